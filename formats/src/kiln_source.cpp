// A .kiln file read back as a model_source, so `kiln quantize` reuses the converter.
#include <memory>

#include "kiln/formats/import.hpp"
#include "kiln/formats/kiln_file.hpp"
#include "kiln/quant/quant.hpp"

namespace kiln {

model_source load_kiln_source(const std::filesystem::path& path) {
    auto file = std::make_shared<kiln_file>(kiln_file::open(path));
    model_source source;
    source.meta = file->meta();
    for (const tensor_view& t : file->tensors()) {
        const tensor_view* view = &t;  // stable: the file object lives as long as the callbacks
        source.tensors.push_back({t.name, t.shape, std::string(type_name(t.type)), [file, view](std::span<float> out) {
                                      const uint64_t cols = view->cols(), stride = row_bytes(view->type, cols);
                                      for (uint64_t r = 0; r < view->rows(); ++r)
                                          quant::dequantize_row(view->type, view->data + r * stride,
                                                                out.data() + r * cols, cols);
                                  }});
    }
    return source;
}

}  // namespace kiln
