#include "llm/dist/shard.hpp"

#include <cstring>
#include <memory>
#include <vector>

#include "backend/cpu/quant_dot.hpp"
#include "core/error.hpp"

namespace ik::llm {

using backend::WeightMatrix;
using io::DType;
using Bytes = std::vector<uint8_t>;

Range split_range(int64_t n, int parts, int part, int64_t unit) {
  IK_CHECK(parts > 0 && part >= 0 && part < parts, "split_range: part {} of {}", part, parts);
  if (unit > 1 && n % unit == 0) {
    const int64_t units = n / unit;
    return {unit * (units * part / parts), unit * (units * (part + 1) / parts)};
  }
  return {n * part / parts, n * (part + 1) / parts};
}

// A matrix from f32 values: kept as f32 for the reference path, Q8_0 for the fast one when
// the row length allows it.
static WeightMatrix from_f32(std::vector<float> values, int64_t rows, int64_t cols, WeightMatrix::Mode mode) {
  auto bytes = std::make_shared<Bytes>(values.size() * sizeof(float));
  std::memcpy(bytes->data(), values.data(), bytes->size());
  const bool to_q8 = mode == WeightMatrix::Mode::Fast && cols % backend::kQBlock == 0;
  WeightMatrix w = WeightMatrix::prepare(DType::F32, rows, cols, bytes->data(), WeightMatrix::Mode::Reference);
  w.owned = bytes;
  if (!to_q8) return w;
  auto q = std::make_shared<Bytes>(io::row_bytes(DType::Q8_0, cols) * size_t(rows));
  for (int64_t r = 0; r < rows; ++r)
    backend::quantize_q8_0(values.data() + r * cols, q->data() + r * io::row_bytes(DType::Q8_0, cols), cols);
  WeightMatrix wq = WeightMatrix::prepare(DType::Q8_0, rows, cols, q->data(), WeightMatrix::Mode::Fast);
  wq.owned = q;
  return wq;
}

static std::vector<float> dequantize_block(const WeightMatrix& w, Range rows, Range cols) {
  std::vector<float> row(w.cols), out(rows.size() * cols.size());
  for (int64_t r = rows.first; r < rows.last; ++r) {
    backend::weight_row(w, r, row.data());
    std::memcpy(out.data() + (r - rows.first) * cols.size(), row.data() + cols.first, cols.size() * sizeof(float));
  }
  return out;
}

WeightMatrix slice_rows(const WeightMatrix& w, Range rows, WeightMatrix::Mode mode) {
  IK_CHECK(rows.first >= 0 && rows.first < rows.last && rows.last <= w.rows, "row slice [{}, {}) of a {}-row matrix",
           rows.first, rows.last, w.rows);
  if (w.lut) return from_f32(dequantize_block(w, rows, {0, w.cols}), rows.size(), w.cols, mode);
  WeightMatrix s = w;  // a view: shares the bytes (and their owner)
  s.data = w.data + rows.first * w.row_bytes;
  s.rows = rows.size();
  return s;
}

// The stored blocks of one Q4_1x4-repacked row (scales, offsets, nibbles as arrays) back in
// the plain Q4_1 layout, so a block range can be copied.
static void unpack_q4_1x4_row(const uint8_t* row, int64_t nb, backend::BlockQ4_1* out) {
  for (int64_t b = 0; b < nb; ++b) {
    out[b].d = reinterpret_cast<const uint16_t*>(row)[b];
    out[b].m = reinterpret_cast<const uint16_t*>(row)[nb + b];
    std::memcpy(out[b].qs, row + 4 * nb + 16 * b, 16);
  }
}

WeightMatrix slice_cols(const WeightMatrix& w, Range cols, WeightMatrix::Mode mode) {
  IK_CHECK(cols.first >= 0 && cols.first < cols.last && cols.last <= w.cols,
           "column slice [{}, {}) of a {}-column matrix", cols.first, cols.last, w.cols);
  const int64_t B = backend::kQBlock;
  const bool blocked = !w.lut && (w.type == DType::Q4_0 || w.type == DType::Q4_1 || w.type == DType::Q8_0);
  const bool aligned = cols.first % B == 0 && cols.last % B == 0;
  if (w.lut || (blocked && !aligned))
    return from_f32(dequantize_block(w, {0, w.rows}, cols), w.rows, cols.size(), mode);

  // Copy whole blocks (or f32 values) of every row: the kernels see exactly the stored values.
  const DType type = w.type;
  const size_t unit_bytes = type == DType::F32 ? sizeof(float) : io::row_bytes(type, B);
  const int64_t first_unit = type == DType::F32 ? cols.first : cols.first / B;
  const int64_t n_units = type == DType::F32 ? cols.size() : cols.size() / B;
  const size_t out_row = unit_bytes * n_units;
  IK_CHECK(out_row == io::row_bytes(type, cols.size()), "column slice: unexpected row size");
  auto bytes = std::make_shared<Bytes>(out_row * size_t(w.rows));
  std::vector<backend::BlockQ4_1> blocks(w.q4_1x4 ? w.cols / B : 0);
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* src = w.data + r * w.row_bytes;
    if (w.q4_1x4) {
      unpack_q4_1x4_row(src, w.cols / B, blocks.data());
      src = reinterpret_cast<const uint8_t*>(blocks.data());
    }
    std::memcpy(bytes->data() + r * out_row, src + first_unit * unit_bytes, out_row);
  }
  // prepare() repacks Q4_1 into its own buffer where the VNNI kernel exists; otherwise the
  // matrix is a view of ours, which it must then keep alive.
  WeightMatrix s = WeightMatrix::prepare(type, w.rows, cols.size(), bytes->data(), mode);
  if (!s.owned) s.owned = bytes;
  return s;
}

}  // namespace ik::llm
