// The chat loop's state (see chat_session.hpp). The template renders the whole conversation each
// turn; because every built-in's prompt after one more turn extends the previous prompt, the text
// past the previous render is exactly what the KV cache lacks.
#include "kiln/runtime/chat_session.hpp"

#include <algorithm>
#include <chrono>

#include "kiln/formats/error.hpp"

namespace kiln {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

std::string piece_or_empty(const vocabulary& vocab, int64_t id) {
    return id >= 0 && size_t(id) < vocab.size() ? vocab.tokens[size_t(id)] : std::string();
}

}  // namespace

chat_session::chat_session(language_model& lm, const tokenizer& tok, const vocabulary& vocab, chat_template tmpl,
                           sampler& sample, std::string system)
    : lm_(lm),
      tok_(tok),
      template_(tmpl),
      special_{piece_or_empty(vocab, vocab.bos_id), piece_or_empty(vocab, vocab.eos_id)},
      // A template whose text starts with BOS gets it from the text, never twice.
      add_bos_(vocab.add_bos && !tmpl.bos_in_text()),
      sampler_(sample) {
    if (tok.eos_id() >= 0) stop_ids_.push_back(tok.eos_id());
    // A generated BOS starts a new document (base models end a text that way): stop there too.
    if (tok.bos_id() >= 0) stop_ids_.push_back(tok.bos_id());
    // End-of-turn texts are stop tokens when the vocabulary has them as one special token.
    for (const std::string& text : template_.stop_texts(special_)) {
        const std::vector<int32_t> ids = tok.encode(text, false, true);
        if (ids.size() != 1) continue;
        const auto kind = static_cast<token_kind>(vocab.types[size_t(ids[0])]);
        if (kind == token_kind::control || kind == token_kind::user_defined) stop_ids_.push_back(ids[0]);
    }
    if (!system.empty()) history_.push_back({"system", std::move(system)});
}

bool chat_session::is_stop(int32_t id) const {
    return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
}

void chat_session::reset() {
    if (!history_.empty() && history_.front().role == "system") history_.resize(1);
    else history_.clear();
    pending_close_.clear();
    position_ = 0;
    full_ = false;
}

chat_turn chat_session::send(std::string_view user_text, int32_t max_reply_tokens,
                             const std::function<void(std::string_view)>& on_text) {
    chat_turn turn;
    if (full_) {
        turn.context_full = true;
        return turn;
    }
    const auto prompt_start = clock_type::now();
    std::vector<chat_message> next = history_;
    next.push_back({"user", std::string(user_text)});
    const std::string prompt = template_.render(next, true, special_);
    std::string fresh;  // the text the cache does not hold yet
    if (position_ == 0) {
        fresh = prompt;
    } else {
        const std::string before = template_.render(history_, false, special_);
        if (prompt.compare(0, before.size(), before) != 0)
            throw error("chat template " + std::string(template_.name()) + " does not extend the previous prompt");
        fresh = pending_close_ + prompt.substr(before.size());
    }
    const std::vector<int32_t> ids = tok_.encode(fresh, position_ == 0 && add_bos_, true);
    // At least one position must stay free for the reply's first token.
    if (ids.empty() || int64_t(position_) + int64_t(ids.size()) >= lm_.context_length()) {
        turn.context_full = !ids.empty();
        return turn;
    }
    std::span<const float> logits = lm_.forward_batch(ids, position_, false);
    position_ += int32_t(ids.size());
    turn.prompt_tokens = int32_t(ids.size());
    history_ = std::move(next);
    pending_close_.clear();
    turn.prompt_seconds = seconds_since(prompt_start);

    const auto reply_start = clock_type::now();
    int32_t previous = ids.back();
    for (int32_t i = 0; i < max_reply_tokens; ++i) {
        const int32_t id = sampler_.sample(logits);
        if (is_stop(id)) break;
        // A token the cache cannot hold is not shown: the conversation stays what the cache holds.
        if (position_ >= lm_.context_length()) {
            full_ = turn.context_full = true;
            break;
        }
        const std::string text = tok_.piece_text(previous, id);
        on_text(text);
        turn.reply += text;
        logits = lm_.forward(id, position_++);
        ++turn.reply_tokens;
        previous = id;
    }
    turn.reply_seconds = seconds_since(reply_start);
    history_.push_back({"assistant", turn.reply});
    // Fed with the next turn: the end-of-turn token the model sampled (or would have, when the
    // reply was cut at max_reply_tokens) and the separator after it.
    pending_close_ = template_.reply_end(special_);
    return turn;
}

}  // namespace kiln
