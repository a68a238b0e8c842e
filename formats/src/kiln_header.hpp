// The fixed 80-byte header of a .kiln file (SPEC.md "Header"), shared by reader and writer.
#pragma once
#include <cstdint>

namespace kiln::detail {

inline constexpr char kiln_magic[4] = {'K', 'I', 'L', 'N'};

struct kiln_header {
    char magic[4];
    uint32_t version;
    uint64_t file_size;
    uint64_t meta_offset;
    uint64_t meta_size;
    uint64_t table_offset;
    uint64_t table_size;
    uint64_t data_offset;
    uint32_t alignment;
    uint32_t tensor_count;
    uint64_t index_checksum;
    uint64_t reserved;
};
static_assert(sizeof(kiln_header) == 80, "the header is 80 bytes on disk");

inline uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

}  // namespace kiln::detail
