// The safetensors reader on synthetic files: F32/F16/BF16 values, and malformed headers,
// offsets and dtypes refused with a file_error naming the file.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "kiln/formats/error.hpp"
#include "kiln/formats/safetensors.hpp"
#include "test_support.hpp"

using namespace kiln;

namespace {

// 8-byte little-endian header length, the header text, then the data bytes.
void write_safetensors(const std::filesystem::path& path, const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    out += header;
    out += data;
    std::ofstream(path, std::ios::binary).write(out.data(), std::streamsize(out.size()));
}

template <class T>
std::string raw(std::initializer_list<T> values) {
    std::string s;
    for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
    return s;
}

std::string open_error(const std::filesystem::path& path) {
    try {
        safetensors_file::open(path);
    } catch (const file_error& e) {
        CHECK_MESSAGE(std::string(e.what()).rfind(path.string() + ": ", 0) == 0, e.what());
        return e.what();
    }
    return "(no error)";
}

std::string header_error(const test::temp_dir& dir, const std::string& header, const std::string& data) {
    write_safetensors(dir / "bad.safetensors", header, data);
    return open_error(dir / "bad.safetensors");
}

}  // namespace

TEST_CASE("safetensors: f32 f16 and bf16 tensors read back") {
    test::temp_dir dir;
    const std::string data = raw<float>({1.0f, -2.0f, 3.5f, 0.25f, 5.0f, 6.0f}) + raw<uint16_t>({0x3C00, 0xC000}) +
                             raw<uint16_t>({0x3F80, 0x4040});
    const std::string header = R"({"__metadata__":{"format":"pt"},
        "m":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},
        "h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},
        "b":{"dtype":"BF16","shape":[2],"data_offsets":[28,32]},
        "i":{"dtype":"I64","shape":[0],"data_offsets":[32,32]}})";
    write_safetensors(dir / "t.safetensors", header, data);
    const auto f = safetensors_file::open(dir / "t.safetensors");
    CHECK(f.tensors().size() == 4);
    CHECK(f.header_metadata().at("format") == "pt");
    const auto* m = f.find("m");
    REQUIRE(m);
    CHECK(m->shape == std::vector<uint64_t>{2, 3});
    std::vector<float> values(6);
    f.read_f32(*m, values);
    CHECK(values == std::vector<float>{1.0f, -2.0f, 3.5f, 0.25f, 5.0f, 6.0f});
    std::vector<float> two(2);
    f.read_f32(*f.find("h"), two);
    CHECK(two == std::vector<float>{1.0f, -2.0f});
    f.read_f32(*f.find("b"), two);
    CHECK(two == std::vector<float>{1.0f, 3.0f});
    std::vector<float> none;
    CHECK_THROWS_WITH_AS(f.read_f32(*f.find("i"), none), doctest::Contains("dtype I64"), file_error);
    CHECK_THROWS_AS(f.read_f32(*m, two), file_error);  // wrong output size
}

TEST_CASE("safetensors: malformed files are refused") {
    test::temp_dir dir;
    const std::string data = raw<float>({1, 2, 3, 4});
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", data).find("malformed header JSON") !=
          std::string::npos);
    CHECK(header_error(dir, R"([1,2])", data).find("not an object") != std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,20]}})", data).find("outside") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,4]}})", data).find("outside") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data).find("need 12") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", data).find("need 8") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", data).find("unknown dtype 'Q4'") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data).find("shape") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", data).find("two numbers") !=
          std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[4]}})", data).find("no data_offsets") != std::string::npos);
    CHECK(header_error(dir, R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data)
              .find("too large") != std::string::npos);
    CHECK(header_error(dir,
                       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       data)
              .find("overlap") != std::string::npos);

    // Header length past the end of the file, and files too short for one.
    std::string bytes(8, '\0');
    const uint64_t huge = uint64_t(1) << 40;
    std::memcpy(bytes.data(), &huge, 8);
    bytes += "{}";
    std::ofstream(dir / "huge.safetensors", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    CHECK(open_error(dir / "huge.safetensors").find("past the end") != std::string::npos);
    std::ofstream(dir / "short.safetensors", std::ios::binary).write("abc", 3);
    CHECK(open_error(dir / "short.safetensors").find("too short") != std::string::npos);
    CHECK(open_error(dir / "absent.safetensors").find("cannot open") != std::string::npos);

    // Every truncation of a valid file is refused too.
    const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    write_safetensors(dir / "ok.safetensors", header, data);
    std::ifstream in(dir / "ok.safetensors", std::ios::binary);
    const std::string full((std::istreambuf_iterator<char>(in)), {});
    for (size_t cut = 0; cut < full.size(); ++cut) {
        std::ofstream(dir / "cut.safetensors", std::ios::binary).write(full.data(), std::streamsize(cut));
        CHECK_MESSAGE(open_error(dir / "cut.safetensors") != "(no error)", "cut at " << cut);
    }
}

TEST_CASE("safetensors: sharded folders and their index") {
    test::temp_dir dir;
    write_safetensors(dir / "part-1.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                      raw<float>({7.0f}));
    write_safetensors(dir / "part-2.safetensors", R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                      raw<float>({8.0f}));
    auto write_index = [&](const std::string& text) {
        std::ofstream(dir / "model.safetensors.index.json") << text;
    };
    write_index(R"({"metadata":{},"weight_map":{"x":"part-1.safetensors","y":"part-2.safetensors"}})");
    const auto set = safetensors_set::open_folder(dir.path());
    CHECK(set.names() == std::vector<std::string>{"x", "y"});
    std::vector<float> one(1);
    auto file = set.file_of("y");
    REQUIRE(file);
    file->read_f32(*file->find("y"), one);
    CHECK(one[0] == 8.0f);
    CHECK(set.file_of("z") == nullptr);

    auto folder_error = [&]() {
        try {
            safetensors_set::open_folder(dir.path());
        } catch (const file_error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    write_index(R"({"weight_map":{"x":"part-2.safetensors"}})");
    CHECK(folder_error().find("does not hold tensor 'x'") != std::string::npos);
    write_index(R"({"weight_map":{"x":"../part-1.safetensors"}})");
    CHECK(folder_error().find("not a file in the model folder") != std::string::npos);
    write_index(R"({"weight_map":{"x":"part-3.safetensors"}})");
    CHECK(folder_error().find("part-3.safetensors: cannot open") != std::string::npos);
    write_index(R"({"weight_map":[1]})");
    CHECK(folder_error().find("weight_map") != std::string::npos);
    write_index(R"({"weight_map":)");
    CHECK(folder_error().find("malformed JSON") != std::string::npos);
    std::filesystem::remove(dir / "model.safetensors.index.json");
    CHECK(folder_error().find("no model.safetensors") != std::string::npos);
}
