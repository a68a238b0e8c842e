// A conversation with a chat model that keeps its KV cache between turns: each turn feeds only
// the tokens that are new (the close of the previous reply and the new user message, rendered by
// the chat template), at the positions after everything fed before, and samples the reply.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/formats/chat_template.hpp"
#include "kiln/formats/vocabulary.hpp"
#include "kiln/runtime/language_model.hpp"
#include "kiln/runtime/sampler.hpp"
#include "kiln/runtime/tokenizer.hpp"

namespace kiln {

struct chat_turn {
    std::string reply;              // the reply's text (what on_text was given, joined)
    int32_t prompt_tokens = 0;      // tokens fed before the reply: only this turn's, never earlier ones
    int32_t reply_tokens = 0;       // tokens sampled and fed (stop tokens are not counted)
    bool context_full = false;      // the turn did not fit, or the reply was cut off by the full context
    double prompt_seconds = 0;
    double reply_seconds = 0;
};

class chat_session {
public:
    // lm, tok and the sampler must outlive the session. An empty system text means no system message.
    chat_session(language_model& lm, const tokenizer& tok, const vocabulary& vocab, chat_template tmpl,
                 sampler& sample, std::string system);

    // Adds the user's message, feeds what is new, and samples a reply of at most max_reply_tokens,
    // passing each token's text to on_text as it is sampled. The reply ends at the template's end
    // tokens or EOS. When the turn does not fit the context, nothing is fed (prompt_tokens 0) and
    // context_full is set; once a reply has filled the context, every turn reports it until reset().
    chat_turn send(std::string_view user_text, int32_t max_reply_tokens,
                   const std::function<void(std::string_view)>& on_text);

    // Forgets the conversation (the system message stays); the next turn starts at position 0.
    void reset();

    int32_t position() const { return position_; }  // tokens in the KV cache
    int32_t context_length() const { return lm_.context_length(); }
    const chat_template& chat() const { return template_; }
    const std::vector<chat_message>& history() const { return history_; }

private:
    bool is_stop(int32_t id) const;

    language_model& lm_;
    const tokenizer& tok_;
    chat_template template_;
    chat_special_tokens special_;
    bool add_bos_;
    sampler& sampler_;
    std::vector<int32_t> stop_ids_;
    std::vector<chat_message> history_;  // system (if any), then user/assistant turns
    std::string pending_close_;          // reply_end of the last reply, fed with the next turn
    int32_t position_ = 0;
    bool full_ = false;
};

}  // namespace kiln
