// The GGUF reader on synthetic files: every metadata value type, nested arrays, alignment and
// tensor data; and every kind of corrupt or hostile file gives a file_error naming the file.
#include <doctest/doctest.h>

#include <cmath>

#include "kiln/formats/error.hpp"
#include "kiln/formats/gguf.hpp"
#include "test_hf_gguf_support.hpp"

using namespace kiln;
using kiln::test::gguf_bytes;

namespace {

// A small valid GGUF v3 file: one key of each value type, a nested array, general.alignment 64,
// an f32 [2 rows x 3] tensor and an f16 [4] tensor; its data ends exactly at the end of the file.
gguf_bytes small_gguf(uint32_t version = 3) {
    gguf_bytes g;
    g.header(version, 2, 16);
    g.key("u8", 0).pod(uint8_t(200));
    g.key("i8", 1).pod(int8_t(-100));
    g.key("u16", 2).pod(uint16_t(60000));
    g.key("i16", 3).pod(int16_t(-30000));
    g.key("u32", 4).pod(uint32_t(4000000000u));
    g.key("i32", 5).pod(int32_t(-2000000000));
    g.key("f32", 6).pod(1.5f);
    g.key("bool", 7).pod(uint8_t(1));
    g.kv_string("string", "héllo");
    g.key("u64", 10).pod(uint64_t(1) << 40);
    g.key("i64", 11).pod(int64_t(-1) << 40);
    g.key("f64", 12).pod(-2.25);
    g.key("strings", 9).u32(8).u64(3).str("a").str("").str("ccc");
    g.key("nested", 9).u32(9).u64(2);          // array of two arrays
    g.u32(5).u64(2).pod(int32_t(-1)).pod(int32_t(7));  // [-1, 7]
    g.u32(6).u64(0);                                   // [] of f32
    g.key("empty", 9).u32(4).u64(0);
    g.kv_u32("general.alignment", 64);
    g.tensor_info("matrix", {3, 2}, 0, 0);
    g.tensor_info("vector", {4}, 1, 64);
    g.pad_to(64);
    for (float v : {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}) g.pod(v);
    g.pad_to(64);
    for (uint16_t h : {0x3C00, 0xC000, 0x3800, 0x0000}) g.pod(uint16_t(h));
    return g;
}

std::string open_error(const std::filesystem::path& path) {
    try {
        gguf_file::open(path);
    } catch (const file_error& e) {
        return e.what();
    }
    return "(no error)";
}

std::string open_error(const gguf_bytes& g, const test::temp_dir& dir) {
    auto path = dir / "bad.gguf";
    g.write(path);
    std::string message = open_error(path);
    CHECK_MESSAGE(message.rfind(path.string() + ": ", 0) == 0, message);  // names the file first
    return message;
}

}  // namespace

TEST_CASE("gguf reader: every value type and tensor infos of a synthetic file") {
    test::temp_dir dir;
    small_gguf().write(dir / "small.gguf");
    const gguf_file f = gguf_file::open(dir / "small.gguf");
    CHECK(f.version() == 3);
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() % 64 == 0);
    CHECK(f.metadata().size() == 16);
    CHECK(std::get<uint8_t>(f.find("u8")->value) == 200);
    CHECK(f.find("i8")->as_i64() == -100);
    CHECK(f.find("u16")->as_u64() == 60000);
    CHECK(f.find("i16")->as_i64() == -30000);
    CHECK(f.get_u64("u32") == 4000000000u);
    CHECK(f.find("i32")->as_i64() == -2000000000);
    CHECK(f.find("f32")->as_f64() == 1.5);
    CHECK(f.get_bool_or("bool", false));
    CHECK(f.get_string("string") == "héllo");
    CHECK(f.get_u64("u64") == (uint64_t(1) << 40));
    CHECK(f.find("i64")->as_i64() == -(int64_t(1) << 40));
    CHECK(f.get_f64_or("f64", 0) == -2.25);
    CHECK(f.get_string_array("strings") == std::vector<std::string>{"a", "", "ccc"});
    const auto& nested = f.find("nested")->as_array();
    REQUIRE(nested.items.size() == 2);
    CHECK(nested.element_type == gguf_type::array);
    CHECK(nested.items[0].as_array().items[1].as_i64() == 7);
    CHECK(nested.items[1].as_array().element_type == gguf_type::f32);
    CHECK(nested.items[1].as_array().items.empty());
    CHECK(f.find("empty")->as_array().element_type == gguf_type::u32);

    // Wrong kinds and absent keys name the file and the key.
    CHECK_THROWS_WITH_AS(f.get_u64("i8"), doctest::Contains("'i8'"), file_error);
    CHECK_THROWS_WITH_AS(f.get_string("u8"), doctest::Contains("expected a string"), file_error);
    CHECK_THROWS_WITH_AS(f.get_u64("absent"), doctest::Contains("missing"), file_error);
    CHECK(f.get_u64_or("absent", 9) == 9);

    REQUIRE(f.tensors().size() == 2);
    const auto& m = f.tensors()[0];
    CHECK(m.name == "matrix");
    CHECK(m.dims == std::vector<uint64_t>{3, 2});
    CHECK(m.shape() == std::vector<uint64_t>{2, 3});  // outermost first
    CHECK(m.size == 24);
    std::vector<float> values(6);
    f.read_f32(m, values);
    CHECK(values == std::vector<float>{1, 2, 3, 4, 5, 6});
    const auto* v = f.find_tensor("vector");
    REQUIRE(v);
    CHECK(v->type_name() == "f16");
    std::vector<float> halves(4);
    f.read_f32(*v, halves);
    CHECK(halves == std::vector<float>{1.0f, -2.0f, 0.5f, 0.0f});
    std::vector<float> wrong(5);
    CHECK_THROWS_AS(f.read_f32(*v, wrong), file_error);

    // Version 2 has the same layout.
    small_gguf(2).write(dir / "v2.gguf");
    CHECK(gguf_file::open(dir / "v2.gguf").version() == 2);
}

TEST_CASE("gguf reader: a file cut at any offset gives a file_error") {
    test::temp_dir dir;
    const std::string full = small_gguf().out;
    const auto path = dir / "cut.gguf";
    size_t refused = 0;
    for (size_t cut = 0; cut < full.size(); ++cut) {
        gguf_bytes g;
        g.out = full.substr(0, cut);
        g.write(path);
        std::string message = open_error(path);
        if (message.rfind(path.string() + ": ", 0) == 0) ++refused;
        else FAIL_CHECK("cut at " << cut << ": " << message);
    }
    CHECK(refused == full.size());
}

TEST_CASE("gguf reader: bad headers and hostile counts") {
    test::temp_dir dir;
    auto with_header = [](const std::string& magic, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        gguf_bytes g;
        g.out = magic;
        g.u32(version).u64(n_tensors).u64(n_kv);
        g.out += std::string(64, '\0');
        return g;
    };
    CHECK(open_error(with_header("GGUG", 3, 0, 0), dir).find("bad magic") != std::string::npos);
    CHECK(open_error(with_header("GGUF", 1, 0, 0), dir).find("unsupported GGUF version 1") != std::string::npos);
    CHECK(open_error(with_header("GGUF", 4, 0, 0), dir).find("unsupported GGUF version 4") != std::string::npos);
    CHECK(open_error(with_header("GGUF", 0x03000000, 0, 0), dir).find("big-endian") != std::string::npos);
    CHECK(open_error(with_header("GGUF", 3, uint64_t(1) << 60, 0), dir).find("tensor count") != std::string::npos);
    CHECK(open_error(with_header("GGUF", 3, 0, uint64_t(1) << 60), dir).find("metadata count") != std::string::npos);
    CHECK(open_error(with_header("GGUF", 3, ~uint64_t(0), ~uint64_t(0)), dir).find("cannot fit") != std::string::npos);

    gguf_bytes g;
    g.header(3, 0, 1).u64(uint64_t(1) << 40).out += "key and some more bytes";  // key length 2^40
    CHECK(open_error(g, dir).find("truncated") != std::string::npos);

    g = {};
    g.header(3, 0, 1).key("s", 8).u64(uint64_t(1) << 40).out += "abc";  // string value 2^40 bytes
    CHECK(open_error(g, dir).find("truncated") != std::string::npos);

    g = {};
    g.header(3, 0, 1).key("a", 9).u32(0).u64(uint64_t(1) << 40);  // 2^40 u8 elements
    CHECK(open_error(g, dir).find("element count") != std::string::npos);

    g = {};
    g.header(3, 0, 1).key("a", 9).u32(8).u64(uint64_t(1) << 58);  // 2^58 strings
    CHECK(open_error(g, dir).find("cannot fit") != std::string::npos);

    g = {};  // 2^23 + 1 real u8 items: each would cost ~40 bytes parsed, so the total is capped
    g.header(3, 0, 1).key("a", 9).u32(0).u64((uint64_t(1) << 23) + 1);
    g.out += std::string((size_t(1) << 23) + 1, '\x01');
    CHECK(open_error(g, dir).find("items in all") != std::string::npos);

    g = {};
    g.header(3, 0, 1).key("x", 13).u32(0);
    CHECK(open_error(g, dir).find("unknown value type 13") != std::string::npos);

    g = {};
    g.header(3, 0, 1).key("a", 9).u32(77).u64(1).u32(0);
    CHECK(open_error(g, dir).find("unknown array element type 77") != std::string::npos);

    g = {};  // arrays nested 100 deep
    g.header(3, 0, 1).key("deep", 9);
    for (int i = 0; i < 100; ++i) g.u32(9).u64(1);
    g.u32(0).u64(0);
    CHECK(open_error(g, dir).find("too deeply") != std::string::npos);

    g = {};
    g.header(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2);
    CHECK(open_error(g, dir).find("appears twice") != std::string::npos);

    g = {};
    g.header(3, 0, 1).kv_u32("general.alignment", 48);
    CHECK(open_error(g, dir).find("power of two") != std::string::npos);
}

TEST_CASE("gguf reader: bad tensor infos") {
    test::temp_dir dir;
    auto one_tensor = [](const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset, size_t data_bytes) {
        gguf_bytes g;
        g.header(3, 1, 0).tensor_info("t", dims, type, offset).pad_to(32);
        g.out += std::string(data_bytes, '\0');
        return g;
    };
    CHECK(one_tensor({4}, 0, 0, 16).out.size() > 0);
    {
        one_tensor({4}, 0, 0, 16).write(dir / "ok.gguf");
        CHECK(gguf_file::open(dir / "ok.gguf").tensors().size() == 1);
    }
    CHECK(open_error(one_tensor({4}, 0, 0, 15), dir).find("past the end") != std::string::npos);
    CHECK(open_error(one_tensor({4}, 0, 32, 16), dir).find("past the end") != std::string::npos);
    CHECK(open_error(one_tensor({4}, 0, ~uint64_t(0) - 31, 16), dir).find("past the end") != std::string::npos);
    CHECK(open_error(one_tensor({4}, 0, 4, 16), dir).find("not a multiple of the alignment") != std::string::npos);
    CHECK(open_error(one_tensor({4}, 99, 0, 16), dir).find("unknown tensor type 99") != std::string::npos);
    CHECK(open_error(one_tensor({16}, 2, 0, 18), dir).find("not whole q4_0 blocks") != std::string::npos);
    CHECK(open_error(one_tensor({4, 0}, 0, 0, 16), dir).find("zero dimension") != std::string::npos);
    CHECK(open_error(one_tensor({1, 1, 1, 1, 1}, 0, 0, 16), dir).find("5 dimensions") != std::string::npos);
    CHECK(open_error(one_tensor({uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0, 16), dir).find("too many elements") !=
          std::string::npos);

    gguf_bytes g;
    g.header(3, 2, 0).tensor_info("a", {8}, 0, 0).tensor_info("b", {8}, 0, 0).pad_to(32);
    g.out += std::string(64, '\0');
    CHECK(open_error(g, dir).find("overlap") != std::string::npos);
    g = {};
    g.header(3, 2, 0).tensor_info("a", {8}, 0, 0).tensor_info("a", {8}, 0, 32).pad_to(32);
    g.out += std::string(64, '\0');
    CHECK(open_error(g, dir).find("appears twice") != std::string::npos);

    // A type kiln knows the size of but cannot decode opens, and reading it is refused clearly.
    one_tensor({32}, 20, 0, 18).write(dir / "iq4.gguf");
    auto f = gguf_file::open(dir / "iq4.gguf");
    std::vector<float> out(32);
    CHECK_THROWS_WITH_AS(f.read_f32(f.tensors()[0], out), doctest::Contains("iq4_nl, which kiln cannot decode"), file_error);

    CHECK(open_error(dir / "absent.gguf").find("cannot open") != std::string::npos);
    std::ofstream(dir / "empty.gguf").flush();
    CHECK(open_error(dir / "empty.gguf").find("bad magic") != std::string::npos);
}

TEST_CASE("gguf import: unsupported architecture and missing pieces are named") {
    test::temp_dir dir;
    auto path = dir / "arch.gguf";
    auto import_error = [&](const gguf_bytes& g) {
        g.write(path);
        try {
            load_gguf(path);
        } catch (const file_error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    gguf_bytes g;
    g.header(3, 0, 1).kv_string("general.architecture", "gpt2");
    CHECK(import_error(g).find("unsupported architecture 'gpt2'") != std::string::npos);
    g = {};
    g.header(3, 0, 1).kv_string("general.architecture", "mamba");
    CHECK(import_error(g).find("unsupported architecture 'mamba'") != std::string::npos);
    g = {};  // deepseek2 is imported (test_deepseek2_import.cpp); its importer names what is missing
    g.header(3, 0, 1).kv_string("general.architecture", "deepseek2");
    CHECK(import_error(g).find("tokenizer.ggml.model is missing") != std::string::npos);
    g = {};
    g.header(3, 0, 0);
    CHECK(import_error(g).find("general.architecture") != std::string::npos);
    g = {};
    g.header(3, 0, 2).kv_string("general.architecture", "llama").kv_string("tokenizer.ggml.model", "llama");
    CHECK(import_error(g).find("llama.embedding_length' is missing") != std::string::npos);
}
