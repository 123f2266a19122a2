#include "llm/quant/lut_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/lut_int8.hpp"
#include "backend/cpu/lut_matmul.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "io/gguf.hpp"

namespace ik::llm::quant {

bool valid_bits(int bits) { return bits == 2 || bits == 3 || bits == 4; }
bool valid_group(int group) { return group == 32 || group == 64 || group == 128 || group == 256; }

void check_format(int bits, int group, int64_t cols, const std::string& what, bool ragged) {
  IK_CHECK(valid_bits(bits), "unsupported bit width {} (valid: 2, 3, 4)", bits);
  IK_CHECK(valid_group(group), "unsupported group size {} (valid: 32, 64, 128, 256)", group);
  if (ragged && cols % group % 32 == 0) return;
  if (cols % group != 0) {
    std::vector<int> ok;
    for (int g : {32, 64, 128, 256})
      if (cols % g == 0) ok.push_back(g);
    fail("group size {} does not divide the {} inputs of {} (valid here: {}{})", group, cols, what,
         ok.empty() ? std::string("none") : fmt::format("{}", fmt::join(ok, ", ")),
         cols % 32 == 0 ? "; or allow a shorter last group with --ragged" : "");
  }
}

double normal_icdf(double p) {
  IK_CHECK(p > 0 && p < 1, "normal_icdf: p = {} outside (0, 1)", p);
  double lo = -40, hi = 40;  // bisection on the CDF: slow but exact to double precision
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::vector<float> nf_table(int bits) {
  IK_CHECK(valid_bits(bits), "unsupported bit width {} (valid: 2, 3, 4)", bits);
  if (bits == 4)  // QLoRA's NF4, as FLUTE and bitsandbytes hard-code it
    return {-1.0f,       -0.6961928f, -0.5250731f, -0.3949175f, -0.2844414f, -0.1847734f, -0.0910500f, 0.0f,
            0.0795803f,  0.1609302f,  0.2461123f,  0.3379152f,  0.4407098f,  0.5626170f,  0.7229568f,  1.0f};
  // flute/nf_utils.py get_values_pivots: the negative half from 2^(b-1) quantiles (ending at 0),
  // the positive half from 2^(b-1)+1 quantiles without the leading 0, normalised by the max.
  const double offset = 0.5 * (1.0 / 32 + 1.0 / 30);
  const int h = 1 << (bits - 1);
  std::vector<double> v;
  for (int i = 0; i < h; ++i) {  // linspace(1 - offset, 0.5, h)
    const double p = (1 - offset) + (0.5 - (1 - offset)) * i / (h - 1);
    v.push_back(-normal_icdf(p));
  }
  for (int i = 1; i <= h; ++i) {  // linspace(0.5, 1 - offset, h + 1)[1:]
    const double p = 0.5 + ((1 - offset) - 0.5) * i / h;
    v.push_back(normal_icdf(p));
  }
  double mx = 0;
  for (double x : v) mx = std::max(mx, std::fabs(x));
  std::vector<float> t;
  for (double x : v) t.push_back(std::fabs(x) < 1e-9 ? 0.0f : float(x / mx));  // icdf(0.5) is 0 up to bisection
  return t;
}

std::vector<float> int_table(int bits) {
  IK_CHECK(valid_bits(bits), "unsupported bit width {} (valid: 2, 3, 4)", bits);
  // Signed integers -2^(b-1) .. 2^(b-1)-1 over 2^(b-1)-1, so 0 and +-1 are exact (a grid without
  // an exact 0 wrecks the many near-zero weights: int3 ppl > 10^5 on SmolLM2). The lowest entry
  // lies below -1 and is never chosen for |w/s| <= 1, as in symmetric absmax int quantization.
  const int half = 1 << (bits - 1);
  std::vector<float> t(size_t(1) << bits);
  for (int i = 0; i < int(t.size()); ++i) t[i] = float(i - half) / float(half - 1);
  return t;
}

std::vector<float> midpoints(const std::vector<float>& table) {
  std::vector<float> p;
  for (size_t i = 0; i + 1 < table.size(); ++i) p.push_back((table[i] + table[i + 1]) / 2);
  return p;
}

int nearest_entry(const std::vector<float>& mid, float v) {
  return int(std::lower_bound(mid.begin(), mid.end(), v) - mid.begin());
}

static float group_scale(const float* x, int64_t len) {
  float amax = 0;
  for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(x[i]));
  return fp16_to_f32(f32_to_fp16(amax));
}

LutTensor quantize(const float* w, int64_t rows, int64_t cols, int bits, int group, std::vector<float> table,
                   bool ragged) {
  check_format(bits, group, cols, "the matrix", ragged);
  IK_CHECK(table.size() == size_t(1) << bits, "a {}-bit table needs {} entries, got {}", bits, 1 << bits,
           table.size());
  IK_CHECK(std::is_sorted(table.begin(), table.end()), "the table must be ascending");
  LutTensor t{bits, group, rows, cols, std::move(table), {}, {}};
  const auto mid = midpoints(t.table);
  const int64_t ng = group_count(cols, group);
  t.scales.resize(size_t(rows * ng));
  t.codes.resize(size_t(rows * cols));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < ng; ++g) {
      const float* x = w + r * cols + g * group;
      const int64_t len = std::min<int64_t>(group, cols - g * group);
      const float s = group_scale(x, len);
      t.scales[r * ng + g] = f32_to_fp16(s);
      const float inv = s > 0 ? 1.0f / s : 0.0f;
      uint8_t* q = t.codes.data() + r * cols + g * group;
      for (int64_t i = 0; i < len; ++i) q[i] = uint8_t(nearest_entry(mid, x[i] * inv));
    }
  }
  return t;
}

std::vector<float> kmeans_table(const float* w, int64_t rows, int64_t cols, int bits, int group, bool ragged,
                                int iterations) {
  check_format(bits, group, cols, "the matrix", ragged);
  std::vector<float> xs;
  xs.reserve(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k0 = 0; k0 < cols; k0 += group) {
      const float* x = w + r * cols + k0;
      const int64_t len = std::min<int64_t>(group, cols - k0);
      const float s = group_scale(x, len);
      if (s > 0)
        for (int64_t i = 0; i < len; ++i) xs.push_back(x[i] / s);
    }
  }
  std::vector<float> table = nf_table(bits);
  const size_t n = table.size();
  for (int it = 0; it < iterations; ++it) {
    const auto mid = midpoints(table);
    std::vector<double> sum(n, 0.0), count(n, 0.0);
    for (float x : xs) {
      const int j = nearest_entry(mid, x);
      sum[j] += x;
      count[j] += 1;
    }
    for (size_t j = 1; j + 1 < n; ++j)  // the ends stay at -1 and 1
      if (count[j] > 0) table[j] = float(sum[j] / count[j]);
    std::sort(table.begin(), table.end());
  }
  return table;
}

void dequantize(const LutTensor& t, float* out) {
  const int64_t ng = group_count(t.cols, t.group);
  for (int64_t r = 0; r < t.rows; ++r)
    for (int64_t k = 0; k < t.cols; ++k)
      out[r * t.cols + k] = t.table[t.codes[r * t.cols + k]] * fp16_to_f32(t.scales[r * ng + k / t.group]);
}

std::vector<uint8_t> pack_codes(const uint8_t* codes, int64_t rows, int64_t cols, int bits) {
  IK_CHECK(cols % 8 == 0, "pack_codes: {} columns is not a multiple of 8", cols);
  const size_t row_bytes = size_t(cols) * bits / 8;
  std::vector<uint8_t> out(row_bytes * rows, 0);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = out.data() + r * row_bytes;
    for (int64_t k = 0; k < cols; ++k) {
      const unsigned q = codes[r * cols + k];
      IK_CHECK(q < (1u << bits), "code {} does not fit in {} bits", q, bits);
      const int64_t bit = k * bits;
      const unsigned v = q << (bit & 7);
      dst[bit >> 3] |= uint8_t(v);
      if ((bit & 7) + bits > 8) dst[(bit >> 3) + 1] |= uint8_t(v >> 8);
    }
  }
  return out;
}

std::vector<uint8_t> unpack_codes(const uint8_t* packed, int64_t rows, int64_t cols, int bits) {
  const size_t row_bytes = size_t(cols) * bits / 8;
  std::vector<uint8_t> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) out[r * cols + k] = uint8_t(backend::lut_code(packed + r * row_bytes, bits, k));
  return out;
}

// The kernel's layout from packed codes and f16 scales (the GGUF form).
static std::shared_ptr<backend::LutWeights> make_weights(int bits, int group, int64_t rows, int64_t cols,
                                                         std::vector<float> table, const uint8_t* packed,
                                                         const uint16_t* scales16) {
  auto w = std::make_shared<backend::LutWeights>();
  w->bits = bits;
  w->group = group;
  w->rows = rows;
  w->cols = cols;
  w->table = std::move(table);
  const size_t nbytes = w->code_row_bytes() * rows;
  w->codes.assign(packed, packed + nbytes);
  w->codes.resize(nbytes + 4, 0);  // the kernel's 32-bit loads may read 3 bytes past the end
  w->scales.resize(size_t(rows * group_count(cols, group)));
  for (size_t i = 0; i < w->scales.size(); ++i) w->scales[i] = fp16_to_f32(scales16[i]);
  return w;
}

std::shared_ptr<backend::LutWeights> to_kernel_layout(const LutTensor& t) {
  const auto packed = pack_codes(t.codes.data(), t.rows, t.cols, t.bits);
  return make_weights(t.bits, t.group, t.rows, t.cols, t.table, packed.data(), t.scales.data());
}

// ---- GGUF ----

std::string lut_codes_name(const std::string& name) { return name + ".lut_q"; }

bool has_lut_tensor(const io::GgufFile& f, const std::string& name) {
  return f.find_tensor(lut_codes_name(name)) != nullptr;
}

bool is_lut_quantized(const io::GgufFile& f) {
  if (f.has("inferkit.quant.format")) return true;
  for (const auto& t : f.tensors())
    if (t.name.size() > 6 && t.name.compare(t.name.size() - 6, 6, ".lut_q") == 0) return true;
  return false;
}

void add_lut_tensor(io::GgufWriter& w, const std::string& name, const LutTensor& t) {
  const auto packed = pack_codes(t.codes.data(), t.rows, t.cols, t.bits);
  const int64_t row_bytes = t.cols * t.bits / 8;
  w.add_tensor(name + ".lut_q", {row_bytes, t.rows}, io::DType::I8, packed.data(), packed.size());
  w.add_tensor(name + ".lut_s", {group_count(t.cols, t.group), t.rows}, io::DType::F16, t.scales.data(),
               t.scales.size() * 2);
  w.add_tensor(name + ".lut_table", {int64_t(t.table.size())}, io::DType::F32, t.table.data(), t.table.size() * 4);
}

std::shared_ptr<backend::LutWeights> load_lut_weights(const io::GgufFile& f, const std::string& name, int64_t rows,
                                                      int64_t cols) {
  const auto& q = f.tensor(name + ".lut_q");
  const auto& s = f.tensor(name + ".lut_s");
  const auto& tab = f.tensor(name + ".lut_table");
  IK_CHECK(q.type == io::DType::I8 && s.type == io::DType::F16 && tab.type == io::DType::F32 && tab.shape.size() == 1,
           "LUT tensor '{}': expected I8 codes, F16 scales and an F32 table", name);
  const int64_t entries = tab.shape[0];
  const int bits = entries == 4 ? 2 : entries == 8 ? 3 : entries == 16 ? 4 : 0;
  IK_CHECK(bits != 0, "LUT tensor '{}': table of {} entries (valid: 4, 8, 16)", name, entries);
  IK_CHECK(q.shape.size() == 2 && q.shape[1] == rows && q.shape[0] * 8 == cols * bits,
           "LUT tensor '{}': codes have shape [{}], expected [{}, {}]", name, fmt::join(q.shape, ", "),
           cols * bits / 8, rows);
  IK_CHECK(s.shape.size() == 2 && s.shape[1] == rows && s.shape[0] > 0,
           "LUT tensor '{}': scales have shape [{}]", name, fmt::join(s.shape, ", "));
  const int group = int(f.has("inferkit.quant.group") ? f.get_int("inferkit.quant.group") : cols / s.shape[0]);
  check_format(bits, group, cols, name, true);
  IK_CHECK(group_count(cols, group) == s.shape[0], "LUT tensor '{}': {} scales per row, expected {} for group {}",
           name, s.shape[0], group_count(cols, group), group);
  std::vector<float> table(entries);
  std::memcpy(table.data(), tab.data, entries * sizeof(float));
  std::vector<uint16_t> scales(size_t(s.n_elements()));
  std::memcpy(scales.data(), s.data, scales.size() * 2);
  return make_weights(bits, group, rows, cols, std::move(table), q.data, scales.data());
}

backend::WeightMatrix load_lut_matrix(const io::GgufFile& f, const std::string& name, int64_t rows, int64_t cols,
                                      backend::WeightMatrix::Mode mode) {
  auto lut = load_lut_weights(f, name, rows, cols);
  backend::WeightMatrix w;
  w.rows = rows;
  w.cols = cols;
  if (mode == backend::WeightMatrix::Mode::Reference) {  // exact f32 math on the dequantized weights
    w.type = io::DType::F32;
    w.row_bytes = size_t(cols) * sizeof(float);
    w.owned = std::make_shared<std::vector<uint8_t>>(w.row_bytes * rows);
    for (int64_t r = 0; r < rows; ++r)
      backend::lut_dequant_row(*lut, r, reinterpret_cast<float*>(w.owned->data() + r * w.row_bytes));
    w.data = w.owned->data();
    return w;
  }
  backend::lut_prepare_int8(*lut);  // matmul then takes the int8 kernel
  w.type = io::DType::I8;  // unused by the LUT path; names the storage in messages
  w.row_bytes = lut->code_row_bytes() + size_t(lut->groups_per_row()) * 2;
  w.lut = std::move(lut);
  return w;
}

}  // namespace ik::llm::quant
