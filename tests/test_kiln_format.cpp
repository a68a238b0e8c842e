// The .kiln format: a synthetic model survives write -> read byte for byte, and every kind of
// corrupt file is refused with a file_error that names the file and the problem.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "kiln/formats/error.hpp"
#include "kiln/formats/kiln_file.hpp"
#include "kiln/formats/kiln_writer.hpp"
#include "test_support.hpp"

using namespace kiln;

namespace {

struct synthetic_tensor {
    std::string name;
    tensor_type type;
    std::vector<uint64_t> shape;
    std::vector<std::byte> bytes;
};

std::vector<synthetic_tensor> synthetic_tensors() {
    std::mt19937 rng(7);
    std::vector<synthetic_tensor> tensors = {
        {"token_embd", tensor_type::f32, {5, 3}, {}},  {"blk.0.attn_q", tensor_type::f16, {4, 6}, {}},
        {"blk.0.ffn_up", tensor_type::q8_0, {3, 64}, {}}, {"blk.0.ffn_down", tensor_type::q4_0, {2, 32}, {}},
        {"blk.0.attn_k", tensor_type::bf16, {2, 2, 3}, {}}, {"output_norm", tensor_type::f32, {7}, {}},
    };
    for (auto& t : tensors) {
        t.bytes.resize(tensor_bytes(t.type, t.shape));
        for (auto& b : t.bytes) b = std::byte(rng() & 0xff);
    }
    return tensors;
}

metadata synthetic_metadata() {
    metadata meta;
    meta.set("general.architecture", std::string("llama"));
    meta.set("a.u64", uint64_t(1) << 40);
    meta.set("a.i64", int64_t(-12345));
    meta.set("a.f64", 0.125);
    meta.set("a.bool", true);
    meta.set("a.f32s", std::vector<float>{1.5f, -2.0f, 3.25f});
    meta.set("a.i32s", std::vector<int32_t>{-1, 0, 7});
    meta.set("a.strings", std::vector<std::string>{"", "\xe2\x96\x81hello", "<0x0A>"});
    return meta;
}

std::filesystem::path write_synthetic(const test::temp_dir& dir) {
    kiln_writer writer(synthetic_metadata());
    for (const auto& t : synthetic_tensors()) writer.add_tensor_bytes(t.name, t.type, t.shape, t.bytes);
    auto path = dir / "synthetic.kiln";
    writer.write(path);
    return path;
}

std::vector<char> read_all(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}
void write_all(const std::filesystem::path& p, const std::vector<char>& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

template <typename T>
T get_at(const std::vector<char>& b, size_t off) {
    T v;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}
template <typename T>
void put_at(std::vector<char>& b, size_t off, T v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}

// Byte offsets of the fields of tensor-table entry `index`, found by walking the table.
struct entry_fields {
    size_t type, layout, n_dims, dims, offset, size;
};
entry_fields locate_entry(const std::vector<char>& b, size_t index) {
    size_t p = get_at<uint64_t>(b, 32);  // table_offset
    for (size_t i = 0;; ++i) {
        entry_fields f{};
        p += 4 + get_at<uint32_t>(b, p);
        f.type = p;
        f.layout = p + 4;
        f.n_dims = p + 8;
        f.dims = p + 12;
        p = f.dims + 8 * get_at<uint32_t>(b, f.n_dims);
        f.offset = p;
        f.size = p + 8;
        p += 24;
        if (i == index) return f;
    }
}

// Recomputes the header's index checksum so a patch reaches the field checks behind it.
void reseal(std::vector<char>& b) {
    uint64_t meta_offset = get_at<uint64_t>(b, 16), meta_size = get_at<uint64_t>(b, 24),
             table_size = get_at<uint64_t>(b, 40);
    put_at<uint64_t>(b, 64, checksum_bytes(b.data() + meta_offset, meta_size + table_size));
}

// Opens the file and returns the error message, failing the test when no file_error is thrown.
std::string open_error(const std::filesystem::path& path) {
    try {
        kiln_file::open(path);
    } catch (const file_error& e) {
        return e.what();
    }
    FAIL("the file was accepted: " << path);
    return {};
}

}  // namespace

TEST_CASE("kiln format: write then read keeps every byte and the metadata") {
    test::temp_dir dir;
    auto path = write_synthetic(dir);
    kiln_file file = kiln_file::open(path);
    CHECK(file.version() == kiln_format_version);
    CHECK(file.meta() == synthetic_metadata());
    auto expected = synthetic_tensors();
    REQUIRE(file.tensors().size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        const tensor_view& t = file.tensors()[i];
        CHECK(t.name == expected[i].name);
        CHECK(t.type == expected[i].type);
        CHECK(t.shape == expected[i].shape);
        CHECK(t.offset % kiln_alignment == 0);
        REQUIRE(t.size == expected[i].bytes.size());
        CHECK(std::memcmp(t.data, expected[i].bytes.data(), t.size) == 0);
        CHECK(file.checksum_ok(t));
        CHECK(&file.get(t.name) == &t);
    }
    CHECK(file.find("no.such.tensor") == nullptr);
    CHECK_THROWS_AS(file.get("no.such.tensor"), file_error);
}

TEST_CASE("kiln format: writing the same model twice gives identical files") {
    test::temp_dir dir;
    auto first = read_all(write_synthetic(dir));
    auto second = read_all(write_synthetic(dir));
    CHECK(first == second);
    // No temporary file is left beside the output.
    size_t files = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
    CHECK(files == 1);
}

TEST_CASE("kiln format: a flipped data byte is caught by the tensor checksum") {
    test::temp_dir dir;
    auto path = write_synthetic(dir);
    auto bytes = read_all(path);
    size_t data_offset = get_at<uint64_t>(bytes, 48);
    bytes[data_offset + 1] ^= 0x40;  // inside the first tensor
    write_all(path, bytes);
    kiln_file file = kiln_file::open(path);
    CHECK_FALSE(file.checksum_ok(file.tensors()[0]));
    CHECK(file.checksum_ok(file.tensors()[1]));
}

TEST_CASE("kiln format: a failed write leaves no file behind") {
    test::temp_dir dir;
    kiln_writer writer(synthetic_metadata());
    writer.add_tensor("ok", tensor_type::f32, {4}, [](std::span<std::byte> out) { std::memset(out.data(), 0, out.size()); });
    writer.add_tensor("fails", tensor_type::f32, {4}, [](std::span<std::byte>) { throw error("source went away"); });
    auto path = dir / "out.kiln";
    CHECK_THROWS_WITH_AS(writer.write(path), "source went away", error);
    CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("kiln format: the writer refuses tensors that cannot be stored") {
    kiln_writer writer{metadata{}};
    auto nothing = [](std::span<std::byte>) {};
    CHECK_THROWS_AS(writer.add_tensor("q", tensor_type::q8_0, {2, 33}, nothing), error);  // 33 is not a block multiple
    CHECK_THROWS_AS(writer.add_tensor("z", tensor_type::f32, {2, 0}, nothing), error);
    CHECK_THROWS_AS(writer.add_tensor("e", tensor_type::f32, {}, nothing), error);
    writer.add_tensor("a", tensor_type::f32, {2}, nothing);
    CHECK_THROWS_AS(writer.add_tensor("a", tensor_type::f32, {2}, nothing), error);
}

TEST_CASE("kiln format: bad files are refused with a clear error naming the file") {
    test::temp_dir dir;
    const auto good = read_all(write_synthetic(dir));
    auto path = dir / "bad.kiln";
    auto check_refused = [&](std::vector<char> bytes, const std::string& expected_words) {
        write_all(path, bytes);
        std::string message = open_error(path);
        CHECK_MESSAGE(message.find(path.string()) == 0, message);
        CHECK_MESSAGE(message.find(expected_words) != std::string::npos, message);
    };

    SUBCASE("missing file") {
        std::string message = open_error(dir / "absent.kiln");
        CHECK(message.find("No such file") != std::string::npos);
    }
    SUBCASE("empty file") { check_refused({}, "empty file"); }
    SUBCASE("wrong magic") {
        auto b = good;
        b[0] = 'G';
        check_refused(b, "wrong magic");
    }
    SUBCASE("unknown version") {
        auto b = good;
        put_at<uint32_t>(b, 4, 99);
        check_refused(b, "unsupported version 99");
    }
    SUBCASE("truncated header") { check_refused(std::vector<char>(good.begin(), good.begin() + 40), "truncated header"); }
    SUBCASE("truncated tensor data") {
        check_refused(std::vector<char>(good.begin(), good.end() - 10), "truncated");
    }
    SUBCASE("corrupt index") {
        auto b = good;
        b[get_at<uint64_t>(b, 32) + 6] ^= 1;  // a byte of the first tensor name
        check_refused(b, "index checksum");
    }
    SUBCASE("tensor offset past the end of the file") {
        auto b = good;
        put_at<uint64_t>(b, locate_entry(b, 2).offset, uint64_t(1) << 20);
        reseal(b);
        check_refused(b, "past the end");
    }
    SUBCASE("tensor size past the end of the file") {
        auto b = good;
        auto f = locate_entry(b, 5);  // the last tensor: [7] f32
        put_at<uint64_t>(b, f.dims, 1000);
        put_at<uint64_t>(b, f.size, 4000);
        reseal(b);
        check_refused(b, "past the end");
    }
    SUBCASE("overlapping tensors") {
        auto b = good;
        put_at<uint64_t>(b, locate_entry(b, 1).offset, get_at<uint64_t>(b, locate_entry(b, 0).offset));
        reseal(b);
        check_refused(b, "overlap");
    }
    SUBCASE("unknown tensor type") {
        auto b = good;
        put_at<uint32_t>(b, locate_entry(b, 0).type, 77);
        reseal(b);
        check_refused(b, "unknown type 77");
    }
    SUBCASE("shape that does not match the size") {
        auto b = good;
        put_at<uint64_t>(b, locate_entry(b, 0).dims, 6);  // [6, 3] f32 needs 72 bytes, the entry says 60
        reseal(b);
        check_refused(b, "does not match");
    }
    SUBCASE("q8_0 in plain rows (an older kiln's layout) or an f32 tensor claiming grouped rows") {
        auto b = good;
        put_at<uint32_t>(b, locate_entry(b, 2).layout, 0);  // blk.0.ffn_up, q8_0
        reseal(b);
        check_refused(b, "convert the model again");
        b = good;
        put_at<uint32_t>(b, locate_entry(b, 0).layout, 1);  // token_embd, f32
        reseal(b);
        check_refused(b, "has layout 1");
    }
    SUBCASE("block type whose rows do not fit") {
        auto b = good;
        put_at<uint64_t>(b, locate_entry(b, 2).dims + 8, 48);  // q8_0 rows of 48
        reseal(b);
        check_refused(b, "do not fit");
    }
    SUBCASE("impossible tensor count") {
        auto b = good;
        put_at<uint32_t>(b, 60, 0xFFFFFFF0u);
        check_refused(b, "tensor count");
    }
    SUBCASE("every truncation point") {
        // Cutting the file anywhere must give an error, never a crash.
        for (size_t cut = 0; cut < good.size(); cut += 7) {
            write_all(path, std::vector<char>(good.begin(), good.begin() + long(cut)));
            CHECK_THROWS_AS(kiln_file::open(path), file_error);
        }
    }
}
