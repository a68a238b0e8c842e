// Dispatch: the scalar table always exists, lookups by name, the active table is runnable.
#include <doctest/doctest.h>

#include <string>

#include "kiln/kernels/kernels.hpp"

using namespace kiln::kernels;

TEST_CASE("dispatch lists scalar first and the active ISA among the available") {
    const auto tables = available();
    REQUIRE(!tables.empty());
    CHECK(std::string(tables[0]->isa) == "scalar");
    bool found = false;
    for (const kernel_table* t : tables) found |= (t == &active());
    CHECK(found);
    CHECK(active_isa() == active().isa);
    MESSAGE("active ISA: " << active_isa() << ", available: " << tables.size());
}

TEST_CASE("dispatch find returns null for unknown names") {
    CHECK(find("scalar") != nullptr);
    CHECK(find("sse9") == nullptr);
    CHECK(find("") == nullptr);
}

TEST_CASE("dispatch tables have every kernel") {
    for (const kernel_table* t : available()) {
        CAPTURE(std::string(t->isa));
        CHECK((t->quantize_activations != nullptr));
        for (auto type : {kiln::tensor_type::f32, kiln::tensor_type::f16, kiln::tensor_type::bf16,
                          kiln::tensor_type::q8_0, kiln::tensor_type::q4_0, kiln::tensor_type::q4_k})
            CHECK((matmul_for(*t, type) != nullptr));
        CHECK((t->dot != nullptr));
        CHECK((t->rmsnorm != nullptr));
        CHECK((t->rope != nullptr));
        CHECK((t->swiglu != nullptr));
        CHECK((t->softmax != nullptr));
        CHECK((t->add != nullptr));
        CHECK((t->scale != nullptr));
        CHECK((t->f16_to_f32 != nullptr));
        CHECK((t->f32_to_f16 != nullptr));
    }
}

TEST_CASE("quantized activation records are 64-byte multiples") {
    for (size_t cols : {32u, 64u, 96u, 4096u, 11008u}) {
        CHECK(quantized_row_bytes(cols) % 64 == 0);
        CHECK(quantized_row_bytes(cols) >= cols + 8 * (cols / 32));
    }
}
