// Byte-level BPE encoding (model "byte-bpe"): not written yet.
#include "kiln/formats/error.hpp"
#include "kiln/runtime/tokenizer.hpp"

namespace kiln {

void tokenizer::build_bpe_tables(const vocabulary&) { throw error("tokenizer: byte-bpe is not supported yet"); }
void tokenizer::encode_bpe(std::string_view, std::vector<int32_t>&) const {}
void tokenizer::encode_bpe_word(std::string_view, std::vector<int32_t>&) const {}

}  // namespace kiln
