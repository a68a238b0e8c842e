// chat_session on a scripted language model: every position is fed exactly once across turns (the
// KV cache is reused, earlier turns are never processed again), replies stop at end tokens, and a
// full context is reported instead of failing.
#include <doctest/doctest.h>

#include "kiln/formats/llama2c_tokenizer.hpp"
#include "kiln/runtime/chat_session.hpp"
#include "kiln/runtime/reference_llama.hpp"
#include "model_fixtures.hpp"

using namespace kiln;

namespace {

// Answers every reply with the scripted tokens, then `end`; records what it was fed and where.
class scripted_model final : public language_model {
public:
    scripted_model(size_t vocab, int32_t context, std::vector<int32_t> reply, int32_t end)
        : vocab_(vocab), context_(context), reply_(std::move(reply)), end_(end), logits_(vocab) {}

    std::span<const float> forward(int32_t token, int32_t pos) override {
        REQUIRE(pos >= 0);
        REQUIRE(pos < context_);
        fed.push_back({pos, token});
        // The reply restarts after every token that is not part of it.
        const auto in_reply = std::find(reply_.begin(), reply_.end(), token);
        const size_t next = in_reply == reply_.end() ? 0 : size_t(in_reply - reply_.begin()) + 1;
        std::fill(logits_.begin(), logits_.end(), 0.0f);
        logits_[size_t(next < reply_.size() ? reply_[next] : end_)] = 1.0f;
        return logits_;
    }
    int32_t context_length() const override { return context_; }
    int32_t vocab_size() const override { return int32_t(vocab_); }

    std::vector<std::pair<int32_t, int32_t>> fed;  // (position, token)

private:
    size_t vocab_;
    int32_t context_;
    std::vector<int32_t> reply_;
    int32_t end_;
    std::vector<float> logits_;
};

struct fixture {
    vocabulary vocab = load_llama2c_tokenizer(test::tok512_bin(), 512);
    tokenizer tok{vocab};
    sampler greedy{sampler_params{.temperature = 0}, 512};
    std::vector<int32_t> reply_ids = tok.encode("Hi there", false);
};

// Positions fed so far must be 0, 1, 2, ... with no position fed twice.
void check_contiguous(const scripted_model& lm) {
    for (size_t i = 0; i < lm.fed.size(); ++i) REQUIRE(lm.fed[i].first == int32_t(i));
}

}  // namespace

TEST_CASE("chat session: the second turn feeds only its own tokens, after the first turn's") {
    fixture f;
    scripted_model lm(512, 512, f.reply_ids, f.tok.eos_id());
    const chat_template plain(chat_template_kind::plain);
    chat_session chat(lm, f.tok, f.vocab, plain, f.greedy, "Be kind.");

    std::string streamed;
    const chat_turn first = chat.send("Hello", 64, [&](std::string_view text) { streamed += text; });
    const std::vector<int32_t> first_prompt = f.tok.encode("Be kind.\n\nUser: Hello\nAssistant:", true, true);
    CHECK(first.prompt_tokens == int32_t(first_prompt.size()));
    CHECK(first.reply_tokens == int32_t(f.reply_ids.size()));
    CHECK(first.reply == " Hi there");
    CHECK(streamed == first.reply);
    CHECK_FALSE(first.context_full);
    // The sampled EOS ends the reply and is not fed.
    CHECK(chat.position() == first.prompt_tokens + first.reply_tokens);
    CHECK(lm.fed.size() == size_t(chat.position()));

    const chat_turn second = chat.send("And you?", 64, [](std::string_view) {});
    // New tokens only: the close of the first reply and the second user message.
    CHECK(second.prompt_tokens == int32_t(f.tok.encode("\nUser: And you?\nAssistant:", false, true).size()));
    CHECK(second.reply_tokens == int32_t(f.reply_ids.size()));
    check_contiguous(lm);
    CHECK(chat.position() == first.prompt_tokens + first.reply_tokens + second.prompt_tokens + second.reply_tokens);
    REQUIRE(chat.history().size() == 5);
    CHECK(chat.history()[4].content == " Hi there");
    CHECK(plain.render(chat.history(), false) ==
          "Be kind.\n\nUser: Hello\nAssistant: Hi there\nUser: And you?\nAssistant: Hi there\n");
}

TEST_CASE("chat session: templates with BOS in the text add no second BOS; end-of-turn tokens stop replies") {
    fixture f;
    // tok512 has <s> and </s>: the llama2 template's text carries both.
    scripted_model lm(512, 512, f.reply_ids, f.tok.eos_id());
    chat_session chat(lm, f.tok, f.vocab, chat_template(chat_template_kind::llama2), f.greedy, "");
    const chat_turn first = chat.send("Hi", 16, [](std::string_view) {});
    REQUIRE_FALSE(lm.fed.empty());
    CHECK(lm.fed[0].second == f.tok.bos_id());
    CHECK(lm.fed[1].second != f.tok.bos_id());
    CHECK(first.reply == " Hi there");
    const size_t before = lm.fed.size();
    chat.send("Bye", 16, [](std::string_view) {});
    // The second turn starts with the reply's </s> and the next <s>, parsed as special tokens.
    CHECK(lm.fed[before].second == f.tok.eos_id());
    CHECK(lm.fed[before + 1].second == f.tok.bos_id());
    check_contiguous(lm);
}

TEST_CASE("chat session: max reply tokens, a full context, and reset") {
    fixture f;
    scripted_model lm(512, 60, {f.reply_ids[0]}, f.reply_ids[0]);  // never ends by itself
    chat_session chat(lm, f.tok, f.vocab, chat_template(chat_template_kind::plain), f.greedy, "");

    const chat_turn short_turn = chat.send("Hello", 5, [](std::string_view) {});
    CHECK(short_turn.reply_tokens == 5);
    CHECK_FALSE(short_turn.context_full);

    const chat_turn filling = chat.send("More", 100, [](std::string_view) {});
    CHECK(filling.prompt_tokens > 0);
    CHECK(filling.context_full);
    CHECK(chat.position() == 60);
    check_contiguous(lm);

    const chat_turn refused = chat.send("Again", 100, [](std::string_view) {});
    CHECK(refused.context_full);
    CHECK(refused.prompt_tokens == 0);
    CHECK(lm.fed.size() == 60);

    chat.reset();
    CHECK(chat.position() == 0);
    lm.fed.clear();
    const chat_turn fresh = chat.send("Hello", 5, [](std::string_view) {});
    CHECK(fresh.prompt_tokens == short_turn.prompt_tokens);
    check_contiguous(lm);

    // A first message longer than the whole context is refused before anything is fed.
    std::string huge;
    for (int i = 0; i < 80; ++i) huge += "word ";
    chat.reset();
    lm.fed.clear();
    const chat_turn too_long = chat.send(huge, 5, [](std::string_view) {});
    CHECK(too_long.context_full);
    CHECK(lm.fed.empty());
}

TEST_CASE("chat session: on stories260K a greedy reply is what greedy generation from the same prompt gives") {
    auto m = model::load(test::converted_stories());
    const tokenizer tok(m->vocab());
    reference_llama chat_model(m), plain_model(m);
    sampler greedy(sampler_params{.temperature = 0}, 512);
    chat_session chat(chat_model, tok, m->vocab(), chat_template(chat_template_kind::plain), greedy, "");
    const chat_turn turn = chat.send("Tell me a story", 30, [](std::string_view) {});
    REQUIRE(turn.reply_tokens > 0);

    const std::vector<int32_t> prompt = tok.encode("User: Tell me a story\nAssistant:", true, true);
    CHECK(turn.prompt_tokens == int32_t(prompt.size()));
    const std::vector<int32_t> all = test::greedy_tokens(plain_model, prompt, 31);
    std::string expected;
    int32_t previous = prompt.back();
    for (size_t i = prompt.size(); i < prompt.size() + size_t(turn.reply_tokens); ++i) {
        expected += tok.piece_text(previous, all[i]);
        previous = all[i];
    }
    CHECK(turn.reply == expected);
    // A reply shorter than the limit ended on EOS or BOS (a new story).
    if (turn.reply_tokens < 30) {
        const int32_t stop = all[prompt.size() + size_t(turn.reply_tokens)];
        CHECK((stop == tok.eos_id() || stop == tok.bos_id()));
    }
}
