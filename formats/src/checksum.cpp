// xxHash64 (seed 0) of tensor bytes and of the file index.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kiln/formats/kiln_file.hpp"

namespace kiln {

uint64_t checksum_bytes(const void* data, uint64_t size) { return XXH64(data, size, 0); }

}  // namespace kiln
