#pragma once
// Tensor storage types with GGML's numbering, their block geometry, and dequantization.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ik::io {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ4_NL = 20, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct DTypeTraits {
  const char* name;
  int64_t block_size;   // elements per block (1 for plain types)
  size_t block_bytes;   // bytes per block
  bool supported;       // we can dequantize it
};

// Throws ik::Error naming the type (by number if unknown).
const DTypeTraits& dtype_traits(DType t);
bool dtype_known(uint32_t raw);
std::string dtype_name(DType t);
// "23 (IQ4_XS?)" for a raw GGML type number we cannot read, naming it when GGML has one.
std::string dtype_describe_unknown(uint32_t raw);
// The type GGML spells `name` ("Q4_K", "F16", ...); throws ik::Error if unknown.
DType dtype_from_name(const std::string& name);
// Bytes of a row of n elements; throws if n is not a multiple of the block size.
size_t row_bytes(DType t, int64_t n);

// Dequantize n elements (a multiple of the block size) from src into dst, bit-exactly as
// GGML's reference dequantizers (and the `gguf` Python package) do.
void dequantize(DType t, const void* src, float* dst, int64_t n);

}  // namespace ik::io
