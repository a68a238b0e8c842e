// `kiln chat` scripted through stdin on stories260K: two turns of replies, the second turn feeding
// only its own tokens, /reset, a full context, the chat template chosen at convert, and one-line
// errors.
#include <doctest/doctest.h>

#include <fstream>

#include "kiln/formats/chat_template.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "model_fixtures.hpp"

using namespace kiln;
using test::quote;

namespace {

using test::count_lines;

struct turn_counts {
    int processed;  // prompt tokens processed
    int reply;      // reply tokens
};

// Every turn's "prompt tokens processed: N (...), reply tokens: M" line that -v prints.
std::vector<turn_counts> turns_of(const std::string& err) {
    // Plain string search: <regex> makes GCC 12 warn (-Wmaybe-uninitialized) in sanitizer builds.
    std::vector<turn_counts> turns;
    const std::string processed = "prompt tokens processed: ", reply = "reply tokens: ";
    for (size_t at = err.find(processed); at != std::string::npos; at = err.find(processed, at + 1)) {
        const size_t line_end = err.find('\n', at);
        const size_t r = err.find(reply, at);
        if (r == std::string::npos || r > line_end) continue;
        turns.push_back({std::stoi(err.substr(at + processed.size())), std::stoi(err.substr(r + reply.size()))});
    }
    return turns;
}

// `kiln chat ARGS < stdin_text`.
test::command_result chat(const std::string& args, const std::string& stdin_text, const test::temp_dir& dir) {
    const auto input = dir / "turns.txt";
    std::ofstream(input, std::ios::binary) << stdin_text;
    return test::run_kiln("chat " + args + " < " + quote(input), dir);
}

}  // namespace

TEST_CASE("cli chat: two scripted turns reply, and the second processes only its own tokens") {
    test::temp_dir dir;
    const auto model_path = test::converted_stories();
    auto r = chat("-m " + quote(model_path) + " --temp 0 -n 24 -v", "Tell me a story\nWhat did Lily see?\n", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.err.find("using 'plain'") != std::string::npos);  // stories260K has no chat template
    const auto turns = turns_of(r.err);
    REQUIRE(turns.size() == 2);
    CHECK(turns[0].reply > 0);
    CHECK(turns[1].reply > 0);
    CHECK(count_lines(r.out) >= 2);  // each reply ends with a newline (stories may hold more)

    // Turn one: the whole first prompt. Turn two: the close of the first reply and the second
    // message, rendered the way the plain template renders them, nothing of turn one again.
    const tokenizer tok(model::load(model_path)->vocab());
    const chat_template plain(chat_template_kind::plain);
    const std::vector<chat_message> first = {{"user", "Tell me a story"}};
    CHECK(turns[0].processed == int(tok.encode(plain.render(first, true), true, true).size()));
    const std::vector<chat_message> closed = {first[0], {"assistant", "x"}};
    std::vector<chat_message> second = closed;
    second.push_back({"user", "What did Lily see?"});
    const std::string fresh = plain.reply_end({}) + plain.render(second, true).substr(plain.render(closed, false).size());
    CHECK(fresh == "\nUser: What did Lily see?\nAssistant:");
    CHECK(turns[1].processed == int(tok.encode(fresh, false, true).size()));
    CHECK(turns[1].processed < turns[0].processed + turns[0].reply);  // far less than the conversation so far
}

TEST_CASE("cli chat: /reset starts over, and greedy replies repeat after it") {
    test::temp_dir dir;
    auto r = chat("-m " + quote(test::converted_stories()) + " --temp 0 -n 16 -v",
                  "Once upon a time\n/reset\nOnce upon a time\n/bogus\n/exit\nnever read\n", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const auto turns = turns_of(r.err);
    REQUIRE(turns.size() == 2);  // /exit ends the chat before the last line
    CHECK(turns[0].processed == turns[1].processed);  // from position 0 again, the whole prompt
    CHECK(turns[0].reply > 0);
    // The same greedy reply twice.
    const std::string& out = r.out;
    REQUIRE(out.size() % 2 == 0);
    CHECK(out.substr(0, out.size() / 2) == out.substr(out.size() / 2));
    CHECK(r.err.find("unknown command '/bogus' (/reset, /exit)") != std::string::npos);
}

TEST_CASE("cli chat: a full context gives one clear line and the chat goes on after /reset") {
    test::temp_dir dir;
    auto r = chat("-m " + quote(test::converted_stories()) + " --temp 0 -n 200 -c 48 -v",
                  "Tell me a story\nMore please\n/reset\nHi\n", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const std::string message = "kiln: context of 48 tokens is full; /reset to start over\n";
    size_t messages = 0;
    for (size_t at = r.err.find(message); at != std::string::npos; at = r.err.find(message, at + 1)) ++messages;
    CHECK(messages == 3);  // the first reply fills it, the second turn cannot start, the reply after /reset fills it
    const auto turns = turns_of(r.err);
    REQUIRE(turns.size() == 3);
    CHECK(turns[0].processed + turns[0].reply == 48);
    CHECK(turns[1].processed == 0);
    CHECK(turns[1].reply == 0);
    CHECK(turns[2].processed + turns[2].reply == 48);
    CHECK(r.err.find("context 48/48") != std::string::npos);
}

TEST_CASE("cli chat: the template chosen at convert, --chat-template and --system") {
    test::temp_dir dir;
    const auto model_path = dir / "llama2-chat.kiln";
    auto c = test::run_kiln("convert " + quote(test::stories_bin()) + " --tokenizer " + quote(test::tok512_bin()) +
                                " --chat-template llama2 -o " + quote(model_path),
                            dir);
    REQUIRE_MESSAGE(c.exit_code == 0, c.err);
    CHECK(c.err.find("kiln: chat template: llama2") != std::string::npos);
    auto m = model::load(model_path);
    CHECK(m->vocab().chat_template == "llama2");

    auto r = chat("-m " + quote(model_path) + " --temp 0 -n 8 -v --system 'Be brief.'", "Hi\n", dir);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.err.find("using 'plain'") == std::string::npos);
    const tokenizer tok(m->vocab());
    const std::vector<chat_message> turn = {{"system", "Be brief."}, {"user", "Hi"}};
    const std::string prompt = chat_template::from_name("llama2")->render(turn, true);
    CHECK(prompt == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    const auto turns = turns_of(r.err);
    REQUIRE(turns.size() == 1);
    CHECK(turns[0].processed == int(tok.encode(prompt, false, true).size()));  // <s> from the text, not added twice

    // --chat-template on chat overrides the stored one.
    auto o = chat("-m " + quote(model_path) + " --temp 0 -n 8 -v --chat-template plain", "Hi\n", dir);
    REQUIRE_MESSAGE(o.exit_code == 0, o.err);
    const auto plain_turns = turns_of(o.err);
    REQUIRE(plain_turns.size() == 1);
    CHECK(plain_turns[0].processed == int(tok.encode("User: Hi\nAssistant:", true, true).size()));
}

TEST_CASE("cli chat: bad input gives one error line") {
    test::temp_dir dir;
    auto expect_one_line_error = [&](const test::command_result& r, const std::string& words) {
        test::check_one_line_error(r, words, "kiln chat");
    };
    expect_one_line_error(chat("-m " + quote(dir / "absent.kiln"), "hi\n", dir), "absent.kiln: No such file");
    expect_one_line_error(chat("-m " + quote(test::converted_stories()) + " --chat-template vicuna", "hi\n", dir),
                          "unknown chat template 'vicuna' (known: llama2, llama3, chatml");
    expect_one_line_error(test::run_kiln("convert " + quote(test::stories_bin()) + " --tokenizer " +
                                             quote(test::tok512_bin()) + " --chat-template vicuna -o " +
                                             quote(dir / "x.kiln"),
                                         dir),
                          "unknown chat template 'vicuna'");
    CHECK_FALSE(std::filesystem::exists(dir / "x.kiln"));

    // A template name this kiln does not know, stored by a later one.
    model_source source = load_llama2c(test::stories_bin(), test::tok512_bin());
    source.meta.set("tokenizer.chat_template", std::string("future-template"));
    write_kiln(source, {}, dir / "future.kiln");
    expect_one_line_error(chat("-m " + quote(dir / "future.kiln"), "hi\n", dir),
                          "the model's chat template 'future-template' is not one this kiln knows");
}
