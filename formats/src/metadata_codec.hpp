// Encoding and decoding of the .kiln metadata section (SPEC.md "Metadata section").
#pragma once
#include "byte_io.hpp"
#include "kiln/formats/metadata.hpp"

namespace kiln::detail {

void encode_metadata(const metadata& meta, byte_writer& out);
metadata decode_metadata(byte_reader& in);  // throws kiln::error on any malformation

}  // namespace kiln::detail
