// Block geometry and scalar reference dequantizers. Each dequantizer follows the element
// order and the exact float operations (one rounding per multiply/add, no FMA: see
// src/io/CMakeLists.txt) of the `gguf` Python package's quants.py, so results are bit-exact.
#include "io/dtype.hpp"

#include <cstring>

#include "core/error.hpp"
#include "core/fp16.hpp"

namespace ik::io {

namespace {

constexpr int64_t QK_K = 256;  // elements per K-quant super-block

struct TraitsEntry {
  uint32_t id;
  DTypeTraits traits;
};

// name, elements per block, bytes per block, dequantizable
constexpr TraitsEntry kTraits[] = {
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 2 + 16, true}},
    {3, {"Q4_1", 32, 2 + 2 + 16, true}},
    {6, {"Q5_0", 32, 2 + 4 + 16, true}},
    {7, {"Q5_1", 32, 2 + 2 + 4 + 16, true}},
    {8, {"Q8_0", 32, 2 + 32, true}},
    {9, {"Q8_1", 32, 4 + 4 + 32, false}},
    {10, {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4, true}},
    {11, {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12, true}},
    {12, {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12, true}},
    {13, {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12, true}},
    {14, {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, true}},
    {15, {"Q8_K", QK_K, 4 + QK_K + QK_K / 8, false}},
    {20, {"IQ4_NL", 32, 2 + 16, true}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {30, {"BF16", 1, 2, true}},
};

const DTypeTraits* find_traits(uint32_t raw) {
  for (const auto& e : kTraits)
    if (e.id == raw) return &e.traits;
  return nullptr;
}

// GGML types we do not know the geometry of, so an error can name them.
const char* foreign_type_name(uint32_t raw) {
  switch (raw) {
    case 4: return "Q4_2 (removed)";
    case 5: return "Q4_3 (removed)";
    case 16: return "IQ2_XXS";
    case 17: return "IQ2_XS";
    case 18: return "IQ3_XXS";
    case 19: return "IQ1_S";
    case 21: return "IQ3_S";
    case 22: return "IQ2_S";
    case 23: return "IQ4_XS";
    case 29: return "IQ1_M";
    case 31: return "Q4_0_4_4 (removed)";
    case 32: return "Q4_0_4_8 (removed)";
    case 33: return "Q4_0_8_8 (removed)";
    case 34: return "TQ1_0";
    case 35: return "TQ2_0";
    case 39: return "MXFP4";
    case 40: return "NVFP4";
    case 41: return "Q1_0";
    default: return nullptr;
  }
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
float load_f16(const uint8_t* p) { return fp16_to_f32(load_u16(p)); }

// --- 32-element blocks -------------------------------------------------------------------
// In all of them element j < 16 comes from the low nibble of qs[j], element j + 16 from
// the high nibble.

void deq_q4_0(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(int(qs[j] & 0x0F) - 8);
    y[j + 16] = d * float(int(qs[j] >> 4) - 8);
  }
}

void deq_q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]
  const float d = load_f16(b), m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(qs[j] & 0x0F) + m;
    y[j + 16] = d * float(qs[j] >> 4) + m;
  }
}

void deq_q5_0(const uint8_t* b, float* y) {  // d, qh (u32: bit i is element i's 5th bit), qs[16]
  const float d = load_f16(b);
  const uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | int((qh >> j) & 1) << 4;
    const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = d * float(lo - 16);
    y[j + 16] = d * float(hi - 16);
  }
}

void deq_q5_1(const uint8_t* b, float* y) {  // d, m, qh, qs[16]
  const float d = load_f16(b), m = load_f16(b + 2);
  const uint32_t qh = load_u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | int((qh >> j) & 1) << 4;
    const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = d * float(lo) + m;
    y[j + 16] = d * float(hi) + m;
  }
}

void deq_q8_0(const uint8_t* b, float* y) {  // d, int8 qs[32]
  const float d = load_f16(b);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

void deq_iq4_nl(const uint8_t* b, float* y) {  // d, qs[16] (indices into a fixed table)
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(kIq4nlValues[qs[j] & 0x0F]);
    y[j + 16] = d * float(kIq4nlValues[qs[j] >> 4]);
  }
}

// --- 256-element K-quant super-blocks ----------------------------------------------------

void deq_q2_k(const uint8_t* b, float* y) {  // scales[16], qs[64], d, dmin
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = load_f16(b + 80), dmin = load_f16(b + 82);
  // Element e = g*128 + s*32 + l takes bits 2s..2s+1 of qs[g*32 + l]; 16 sub-blocks of 16.
  for (int e = 0; e < QK_K; ++e) {
    const int g = e / 128, s = (e / 32) % 4, l = e % 32;
    const int q = (qs[g * 32 + l] >> (2 * s)) & 3;
    const uint8_t sc = scales[e / 16];
    const float dl = d * float(sc & 0x0F), ml = dmin * float(sc >> 4);
    y[e] = dl * float(q) - ml;
  }
}

void deq_q3_k(const uint8_t* b, float* y) {  // hmask[32], qs[64], scales[12], d
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = load_f16(b + 108);
  // 16 signed 6-bit scales: low 4 bits from nibbles of sc[0..7], high 2 bits from sc[8..11].
  float dl[16];
  for (int k = 0; k < 16; ++k) {
    const int low = (sc[k % 8] >> (4 * (k / 8))) & 0x0F;
    const int high = (sc[8 + k % 4] >> (2 * (k / 4))) & 0x03;
    dl[k] = d * float(int8_t(low | high << 4) - 32);
  }
  for (int e = 0; e < QK_K; ++e) {
    const int g = e / 128, s = (e / 32) % 4, l = e % 32;
    const int low2 = (qs[g * 32 + l] >> (2 * s)) & 3;
    const int hbit = (hmask[l] >> (e / 32)) & 1;
    const int q = low2 - ((hbit ^ 1) << 2);  // the offset of 4 applies when the bit is 0
    y[e] = dl[e / 16] * float(q);
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed in 12 bytes.
void k_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 0x3F;
    mn = s[j + 4] & 0x3F;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
    mn = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

void deq_q4_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qs[128]
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {  // element e = j*32 + l: nibble (j%2) of qs[(j/2)*32 + l]
    int sc, mn;
    k_scale_min(scales, j, sc, mn);
    const float dj = d * float(sc), mj = dmin * float(mn);
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0F;
      y[j * 32 + l] = dj * float(q) - mj;
    }
  }
}

void deq_q5_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qh[32], qs[128]
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {  // the 5th bit of element j*32 + l is bit j of qh[l]
    int sc, mn;
    k_scale_min(scales, j, sc, mn);
    const float dj = d * float(sc), mj = dmin * float(mn);
    for (int l = 0; l < 32; ++l) {
      const int low = (qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0F;
      const int q = low | ((qh[l] >> j) & 1) << 4;
      y[j * 32 + l] = dj * float(q) - mj;
    }
  }
}

void deq_q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], int8 scales[16], d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  for (int e = 0; e < QK_K; ++e) {
    const int g = e / 128, r = e % 128;
    const int low = (ql[g * 64 + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[g * 32 + r % 32] >> (2 * (r / 32))) & 0x03;
    const float dl = d * float(scales[e / 16]);
    y[e] = dl * float(int8_t(low | high << 4) - 32);
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(DType t) {
  switch (t) {
    case DType::Q4_0: return deq_q4_0;
    case DType::Q4_1: return deq_q4_1;
    case DType::Q5_0: return deq_q5_0;
    case DType::Q5_1: return deq_q5_1;
    case DType::Q8_0: return deq_q8_0;
    case DType::Q2_K: return deq_q2_k;
    case DType::Q3_K: return deq_q3_k;
    case DType::Q4_K: return deq_q4_k;
    case DType::Q5_K: return deq_q5_k;
    case DType::Q6_K: return deq_q6_k;
    case DType::IQ4_NL: return deq_iq4_nl;
    default: return nullptr;
  }
}

}  // namespace

bool dtype_known(uint32_t raw) { return find_traits(raw) != nullptr; }

const DTypeTraits& dtype_traits(DType t) {
  const uint32_t raw = static_cast<uint32_t>(t);
  if (const DTypeTraits* tr = find_traits(raw)) return *tr;
  const char* foreign = foreign_type_name(raw);
  if (foreign) fail("unsupported tensor type {} ({}?)", raw, foreign);
  fail("unknown tensor type {}", raw);
}

std::string dtype_name(DType t) {
  const uint32_t raw = static_cast<uint32_t>(t);
  if (const DTypeTraits* tr = find_traits(raw)) return tr->name;
  const char* foreign = foreign_type_name(raw);
  return foreign ? fmt::format("{}({})", foreign, raw) : fmt::format("type{}", raw);
}

std::string dtype_describe_unknown(uint32_t raw) {
  const char* foreign = foreign_type_name(raw);
  return foreign ? fmt::format("{} ({}?)", raw, foreign) : fmt::format("{}", raw);
}

DType dtype_from_name(const std::string& name) {
  for (const auto& e : kTraits)
    if (name == e.traits.name) return static_cast<DType>(e.id);
  fail("unknown tensor type name '{}'", name);
}

size_t row_bytes(DType t, int64_t n) {
  const DTypeTraits& tr = dtype_traits(t);
  IK_CHECK(n >= 0 && n % tr.block_size == 0,
           "row of {} elements is not a multiple of the {} block size {}", n, tr.name,
           tr.block_size);
  return size_t(n / tr.block_size) * tr.block_bytes;
}

void dequantize(DType t, const void* src, float* dst, int64_t n) {
  const DTypeTraits& tr = dtype_traits(t);
  IK_CHECK(tr.supported, "cannot dequantize tensor type {}", tr.name);
  IK_CHECK(n >= 0 && n % tr.block_size == 0,
           "cannot dequantize {} elements of {}: not a multiple of the block size {}", n, tr.name,
           tr.block_size);
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32:
      if (n) std::memcpy(dst, p, size_t(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(load_u16(p + 2 * i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(p + 2 * i));
      return;
    default: break;
  }
  const BlockFn fn = block_fn(t);
  const int64_t blocks = n / tr.block_size;
  for (int64_t i = 0; i < blocks; ++i) fn(p + size_t(i) * tr.block_bytes, dst + i * tr.block_size);
}

}  // namespace ik::io
