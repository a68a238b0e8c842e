// Built-in chat templates: a fixed conversation renders to exactly what each model's published
// Jinja template produces (checked with jinja2 when written), detection from real
// tokenizer_config.json / GGUF templates, the prefix property chat relies on, and special tokens
// in a rendered prompt encoding as single ids.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "kiln/formats/chat_template.hpp"
#include "kiln/formats/gguf.hpp"
#include "kiln/formats/hf_tokenizer.hpp"
#include "kiln/runtime/tokenizer.hpp"
#include "test_support.hpp"

using namespace kiln;

namespace {

const std::vector<chat_message> conversation = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", "Hi! How can I help?"},
    {"user", "Tell me a joke."},
};

chat_template builtin(const std::string& name) {
    auto t = chat_template::from_name(name);
    REQUIRE_MESSAGE(t, name);
    return *t;
}

std::filesystem::path hf_tokenizers() { return test::models_dir() / "hf-tokenizers"; }

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("chat template: each built-in renders the fixed conversation exactly") {
    // llama2, llama3, chatml (Qwen3), deepseek3, zephyr: the published Jinja's output. mistral and
    // phi3 have no system role in their Jinja: the rest of their string is the Jinja's output too.
    const std::map<std::string, std::string> expected = {
        {"llama2",
         "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST] Hi! How can I help? </s>"
         "<s>[INST] Tell me a joke. [/INST]"},
        {"llama3",
         "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {"chatml",
         "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
         "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n<|im_start|>user\nTell me a joke.<|im_end|>\n"
         "<|im_start|>assistant\n"},
        {"mistral",
         "<s>[INST] You are a helpful assistant.\n\nHello! [/INST]Hi! How can I help?</s>[INST] Tell me a joke. [/INST]"},
        {"deepseek3",
         "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜>Hi! How can I help?"
         "<｜end▁of▁sentence｜><｜User｜>Tell me a joke.<｜Assistant｜>"},
        {"zephyr",
         "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello!</s>\n<|assistant|>\nHi! How can I help?</s>\n"
         "<|user|>\nTell me a joke.</s>\n<|assistant|>\n"},
        {"phi3",
         "<s><|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\n"
         "Hi! How can I help?<|end|>\n<|user|>\nTell me a joke.<|end|>\n<|assistant|>\n"},
        {"plain",
         "You are a helpful assistant.\n\nUser: Hello!\nAssistant: Hi! How can I help?\nUser: Tell me a joke.\n"
         "Assistant:"},
    };
    REQUIRE(expected.size() == chat_template::names().size());
    for (const std::string& name : chat_template::names()) {
        CAPTURE(name);
        REQUIRE(expected.count(name));
        CHECK(builtin(name).render(conversation, true) == expected.at(name));
    }
    // Without the system message, Mistral and Phi-3 equal their Jinja (the Phi-3 one from the GGUF).
    const std::span<const chat_message> no_system(conversation.begin() + 1, conversation.end());
    CHECK(builtin("mistral").render(no_system, true) ==
          "<s>[INST] Hello! [/INST]Hi! How can I help?</s>[INST] Tell me a joke. [/INST]");
    CHECK(builtin("phi3").render(no_system, true) ==
          "<s><|user|>\nHello!<|end|>\n<|assistant|>\nHi! How can I help?<|end|>\n<|user|>\nTell me a joke.<|end|>\n"
          "<|assistant|>\n");
    // Llama 2 and Llama 3 trim the content as their Jinja does.
    const std::vector<chat_message> padded = {{"user", "  Hi \n"}};
    CHECK(builtin("llama2").render(padded, true) == "<s>[INST] Hi [/INST]");
    CHECK(builtin("llama3").render(padded, false) ==
          "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST_CASE("chat template: BOS and EOS come from the vocabulary where the Jinja writes bos_token/eos_token") {
    const chat_special_tokens tokens{"<BOS>", "<EOS>"};
    const std::vector<chat_message> turn = {{"user", "a"}, {"assistant", "b"}};
    CHECK(builtin("llama2").render(turn, false, tokens) == "<BOS>[INST] a [/INST] b <EOS>");
    CHECK(builtin("llama3").render(turn, false, tokens) ==
          "<BOS><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
          "\n\nb<|eot_id|>");
    CHECK(builtin("zephyr").render(turn, false, tokens) == "<|user|>\na<EOS>\n<|assistant|>\nb<EOS>\n");
    CHECK(builtin("llama3").stop_texts(tokens) == std::vector<std::string>{"<EOS>", "<|eot_id|>"});
    CHECK(builtin("chatml").stop_texts({"", ""}) == std::vector<std::string>{"<|endoftext|>", "<|im_end|>"});
}

TEST_CASE("chat template: each turn's prompt extends the previous one, so a chat feeds only new tokens") {
    for (const std::string& name : chat_template::names()) {
        CAPTURE(name);
        const chat_template t = builtin(name);
        std::vector<chat_message> history = {{"system", "Be brief."}};
        std::string before = t.render(history, false);
        for (int turn = 0; turn < 3; ++turn) {
            history.push_back({"user", "question " + std::to_string(turn)});
            const std::string prompt = t.render(history, true);
            CHECK(starts_with(prompt, before));
            history.push_back({"assistant", "answer " + std::to_string(turn)});
            const std::string closed = t.render(history, false);
            CHECK(starts_with(closed, prompt));
            // The reply is followed by what chat feeds after it (Llama 2's Jinja puts a space
            // between, which the model does not generate).
            const std::string end = t.reply_end(t.default_tokens());
            REQUIRE(closed.size() >= end.size());
            CHECK(closed.compare(closed.size() - end.size(), end.size(), end) == 0);
            std::string reply = closed.substr(0, closed.size() - end.size());
            if (name == "llama2") reply.pop_back();
            CHECK(reply.ends_with("answer " + std::to_string(turn)));
            before = closed;
        }
    }
}

TEST_CASE("chat template: names and unknown names") {
    CHECK(chat_template::name_list() == "llama2, llama3, chatml, mistral, deepseek3, zephyr, phi3, plain");
    CHECK_FALSE(chat_template::from_name("vicuna"));
    CHECK_FALSE(chat_template::from_name(""));
    for (const std::string& name : chat_template::names()) CHECK(builtin(name).name() == name);
}

TEST_CASE("chat template: detection from real tokenizer_config.json and GGUF templates") {
    const std::map<std::string, std::string> expected = {
        {"llama3", "llama3"}, {"qwen3", "chatml"}, {"deepseek_v3", "deepseek3"}};
    for (const auto& [folder, name] : expected) {
        CAPTURE(folder);
        const std::string jinja = read_hf_chat_template(hf_tokenizers() / folder / "tokenizer_config.json");
        REQUIRE_FALSE(jinja.empty());
        auto detected = detect_chat_template(jinja);
        REQUIRE(detected);
        CHECK(detected->name() == name);
    }
    // The Llama 2 tokenizer_config.json carries no template at all.
    CHECK(read_hf_chat_template(hf_tokenizers() / "llama2" / "tokenizer_config.json").empty());
    CHECK_FALSE(detect_chat_template(""));
    CHECK_FALSE(detect_chat_template("{{ messages[0]['content'] }}"));

    // Phi-3's GGUF keeps its Jinja in tokenizer.chat_template; <|user|> alone would say Zephyr.
    const vocabulary phi3 = vocabulary_from_gguf(gguf_file::open(test::models_dir() / "vocab" / "ggml-vocab-phi-3.gguf"));
    CHECK(phi3.chat_template == "phi3");
    const vocabulary spm = vocabulary_from_gguf(gguf_file::open(test::models_dir() / "vocab" / "ggml-vocab-llama-spm.gguf"));
    CHECK(spm.chat_template.empty());

    // The published Llama 2 chat, Mistral v0.1 and Zephyr templates (from their tokenizer_config.json).
    CHECK(detect_chat_template("{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}"
                               "{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
                               "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}"
                               "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}")
              ->name() == "llama2");
    CHECK(detect_chat_template("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                               "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
                               "'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}")
              ->name() == "mistral");
    CHECK(detect_chat_template("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
                               "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ "
                               "'<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% endfor %}")
              ->name() == "zephyr");
}

TEST_CASE("chat template: special tokens in a rendered prompt encode as single ids") {
    SUBCASE("Llama 3 (byte-level BPE)") {
        const tokenizer tok(load_hf_tokenizer(hf_tokenizers() / "llama3" / "tokenizer.json"));
        const std::vector<chat_message> turn = {{"user", "Hello!"}};
        const auto ids = tok.encode(builtin("llama3").render(turn, true), false, true);
        // <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n Hello ! <|eot_id|> ...
        REQUIRE(ids.size() == 12);
        CHECK(ids[0] == 128000);
        CHECK(ids[1] == 128006);
        CHECK(ids[3] == 128007);
        CHECK(ids[7] == 128009);
        CHECK(ids[8] == 128006);
        CHECK(ids[11] == 271);  // "\n\n"
    }
    SUBCASE("Qwen3 (byte-level BPE)") {
        const tokenizer tok(load_hf_tokenizer(hf_tokenizers() / "qwen3" / "tokenizer.json"));
        const auto ids = tok.encode(builtin("chatml").render(conversation, true), false, true);
        CHECK(ids.front() == 151644);  // <|im_start|>
        CHECK(std::count(ids.begin(), ids.end(), 151644) == 5);
        CHECK(std::count(ids.begin(), ids.end(), 151645) == 4);  // <|im_end|>
    }
    SUBCASE("Llama 2 (SentencePiece): <s> and </s> only with parse_special") {
        const tokenizer tok(vocabulary_from_gguf(gguf_file::open(test::models_dir() / "vocab" / "ggml-vocab-llama-spm.gguf")));
        const std::vector<chat_message> turns = {{"user", "Hello"}, {"assistant", "Hi"}, {"user", "Bye"}};
        const auto ids = tok.encode(builtin("llama2").render(turns, true), false, true);
        // <s> ▁[ INST ] ▁Hello ▁[ / INST ] ▁Hi ▁ </s> <s> ▁[ INST ] ▁By e ▁[ / INST ]: the text after
        // each special token gets its own dummy-prefix space, as llama.cpp and HF's legacy Llama do.
        const std::vector<int32_t> expected_start = {1, 518, 25580, 29962, 15043, 518, 29914, 25580, 29962};
        REQUIRE(ids.size() > expected_start.size());
        CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + long(expected_start.size())) == expected_start);
        CHECK(std::count(ids.begin(), ids.end(), 1) == 2);
        CHECK(std::count(ids.begin(), ids.end(), 2) == 1);
        const auto literal = tok.encode("<s>", false);
        CHECK(literal.size() > 1);  // without parse_special "<s>" is text
        CHECK(tok.encode("</s>", false, true) == std::vector<int32_t>{2});
    }
}
