#pragma once
// Lookup-table quantization (FLUTE's format, see backend/cpu/lut_matmul.hpp):
// W_hat[n,k] = table[Q[n,k]] * s[n, k/G]. Tables, the quantizer (per-group absmax, nearest
// entry by a search over midpoints), dense bit packing, and the GGUF storage layout.
//
// GGUF layout: GGML has no type for these weights, so a LUT weight `<name>` (e.g.
// `blk.0.attn_q.weight`, N x K) is stored as three tensors instead of `<name>`:
//   <name>.lut_q      I8   shape [K*b/8, N]  codes, each row an LSB-first bit stream
//   <name>.lut_s      F16  shape [ceil(K/G), N]  group scales (the group's absmax)
//   <name>.lut_table  F32  shape [2^b]       the table (per tensor, so learned tables fit)
// b follows from the table length; G is inferkit.quant.group (else K / (K/G)). File metadata:
//   inferkit.quant.format = "lut", inferkit.quant.bits, inferkit.quant.group (u32),
//   inferkit.quant.table = "nf" | "int" | "kmeans" | "nfl", inferkit.quant.source_type (string).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/matmul.hpp"

namespace ik::io {
class GgufFile;
class GgufWriter;
}  // namespace ik::io

namespace ik::llm::quant {

// The valid settings, for checks and error messages.
bool valid_bits(int bits);    // 2, 3, 4
bool valid_group(int group);  // 32, 64, 128, 256
// Throws ik::Error listing what is valid when bits/group are unsupported or group does not
// divide cols (`what` names the tensor). ragged: allow a shorter last group per row when
// cols % group is a multiple of 32 (SmolLM2's K = 576 with G = 128 or 256).
void check_format(int bits, int group, int64_t cols, const std::string& what, bool ragged = false);
inline int64_t group_count(int64_t cols, int group) { return (cols + group - 1) / group; }

// NormalFloat: NF4 is the 16 QLoRA constants; NF3/NF2 are built as FLUTE's nf_utils.py does.
std::vector<float> nf_table(int bits);
// Uniform (symmetric int): (i - 2^(b-1)) / (2^(b-1) - 1), i = 0 .. 2^b-1; 0 and +-1 exact.
std::vector<float> int_table(int bits);
// Inverse standard normal CDF (for the NF construction).
double normal_icdf(double p);

// Index of the table entry nearest to v (table ascending): a binary search over the midpoints,
// ties to the lower entry (torch.searchsorted(pivots, v) as in FLUTE).
int nearest_entry(const std::vector<float>& midpoints, float v);
std::vector<float> midpoints(const std::vector<float>& table);

struct LutTensor {
  int bits = 4, group = 128;
  int64_t rows = 0, cols = 0;
  std::vector<float> table;
  std::vector<uint16_t> scales;  // f16, [rows, group_count(cols, group)]
  std::vector<uint8_t> codes;    // one code per weight, [rows, cols] (unpacked)
};

// Per-group absmax scale (rounded to f16 first, so codes are chosen for the stored scale),
// then the nearest table entry of w / scale.
LutTensor quantize(const float* w, int64_t rows, int64_t cols, int bits, int group, std::vector<float> table,
                   bool ragged = false);
// A table fitted to this tensor: 1-D k-means (Lloyd) on the absmax-normalised weights,
// started from NF. Symmetric ends are kept at -1 and 1 so the absmax stays representable.
std::vector<float> kmeans_table(const float* w, int64_t rows, int64_t cols, int bits, int group, bool ragged = false,
                                int iterations = 12);
void dequantize(const LutTensor& t, float* out);  // out [rows, cols]

// Dense packing of unpacked codes [rows, cols] (cols a multiple of 8) into rows of cols*b/8 bytes.
std::vector<uint8_t> pack_codes(const uint8_t* codes, int64_t rows, int64_t cols, int bits);
std::vector<uint8_t> unpack_codes(const uint8_t* packed, int64_t rows, int64_t cols, int bits);

// The kernel's form of a quantized tensor (packed codes, f32 scales, padded).
std::shared_ptr<backend::LutWeights> to_kernel_layout(const LutTensor& t);

// ---- GGUF ----
std::string lut_codes_name(const std::string& name);  // <name>.lut_q
bool has_lut_tensor(const io::GgufFile& f, const std::string& name);
bool is_lut_quantized(const io::GgufFile& f);  // metadata or any .lut_q tensor
void add_lut_tensor(io::GgufWriter& w, const std::string& name, const LutTensor& t);
// Read `<name>.lut_*` (N = rows, K = cols expected) into the kernel layout; throws on bad shapes.
std::shared_ptr<backend::LutWeights> load_lut_weights(const io::GgufFile& f, const std::string& name, int64_t rows,
                                                      int64_t cols);
// For the model loader: Fast mode keeps the LUT kernel, Reference mode dequantizes to f32.
backend::WeightMatrix load_lut_matrix(const io::GgufFile& f, const std::string& name, int64_t rows, int64_t cols,
                                      backend::WeightMatrix::Mode mode);

}  // namespace ik::llm::quant
