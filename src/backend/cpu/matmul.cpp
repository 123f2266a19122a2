#include "backend/cpu/matmul.hpp"

#include <cblas.h>
#include <cmath>
#include <cstring>
#include <immintrin.h>
#include <omp.h>

#include "backend/cpu/lut_int8.hpp"
#include "backend/cpu/lut_matmul.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "backend/cpu/simd.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"

namespace ik::backend {

using io::DType;

void quantize_q8_0(const float* x, void* out, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(out);
  for (int64_t b = 0; b < n / kQBlock; ++b) {
    const float* xb = x + b * kQBlock;
    float amax = 0;
    for (int i = 0; i < kQBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = f32_to_fp16(d);
    for (int i = 0; i < kQBlock; ++i) blocks[b].qs[i] = int8_t(std::roundf(xb[i] * id));
  }
}

// One copy at load into the layout the VNNI kernel streams (same size as stored).
static void repack_q4_1(WeightMatrix& w) {
  w.owned = std::make_shared<std::vector<uint8_t>>(w.row_bytes * size_t(w.rows));
  uint8_t* dst = w.owned->data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < w.rows; ++r) repack_q4_1x4(w.data + r * w.row_bytes, dst + r * w.row_bytes, w.cols / kQBlock);
  w.data = dst;
  w.q4_1x4 = true;
}

WeightMatrix WeightMatrix::prepare(DType type, int64_t rows, int64_t cols, const void* data, Mode mode) {
  WeightMatrix w;
  w.rows = rows;
  w.cols = cols;
  const bool native = type == DType::F32 ||
                      (mode == Mode::Fast && (type == DType::Q4_0 || type == DType::Q4_1 || type == DType::Q8_0));
  if (mode == Mode::Fast && type == DType::IQ4_NL && cols % kQBlock == 0) {  // a LUT type: the LUT kernel
    w.type = type;
    w.data = static_cast<const uint8_t*>(data);
    w.row_bytes = io::row_bytes(type, cols);
    w.lut = lut_from_iq4_nl(data, rows, cols);
    return w;
  }
  if (native) {
    w.type = type;
    w.data = static_cast<const uint8_t*>(data);
    w.row_bytes = io::row_bytes(type, cols);
    if (type == DType::Q4_1 && q4_1x4_available()) repack_q4_1(w);
    return w;
  }
  // Convert once: to f32 for the reference path, to Q8_0 otherwise.
  const size_t src_row = io::row_bytes(type, cols);
  w.type = mode == Mode::Reference ? DType::F32 : DType::Q8_0;
  if (w.type == DType::Q8_0)
    IK_CHECK(cols % kQBlock == 0, "cannot convert a {}-column {} matrix to Q8_0", cols, io::dtype_name(type));
  w.row_bytes = io::row_bytes(w.type, cols);
  w.owned = std::make_shared<std::vector<uint8_t>>(w.row_bytes * size_t(rows));
  const auto* src = static_cast<const uint8_t*>(data);
  uint8_t* dst = w.owned->data();
#pragma omp parallel
  {
    std::vector<float> row(cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      float* out = w.type == DType::F32 ? reinterpret_cast<float*>(dst + r * w.row_bytes) : row.data();
      io::dequantize(type, src + r * src_row, out, cols);
      if (w.type == DType::Q8_0) quantize_q8_0(row.data(), dst + r * w.row_bytes, cols);
    }
  }
  w.data = dst;
  return w;
}

void weight_row(const WeightMatrix& w, int64_t r, float* out) {
  if (w.lut) return lut_dequant_row(*w.lut, r, out);
  if (w.q4_1x4) {  // back to stored blocks, then the reference dequantizer
    const int64_t nb = w.cols / kQBlock;
    const uint8_t* row = w.data + r * w.row_bytes;
    std::vector<BlockQ4_1> blocks(nb);
    for (int64_t b = 0; b < nb; ++b) {
      blocks[b].d = reinterpret_cast<const uint16_t*>(row)[b];
      blocks[b].m = reinterpret_cast<const uint16_t*>(row)[nb + b];
      std::memcpy(blocks[b].qs, row + 4 * nb + 16 * b, 16);
    }
    return io::dequantize(DType::Q4_1, blocks.data(), out, w.cols);
  }
  io::dequantize(w.type, w.data + r * w.row_bytes, out, w.cols);
}

static void matmul_f32(const WeightMatrix& w, const float* x, float* y, int64_t m) {
  const auto* W = reinterpret_cast<const float*>(w.data);
  if (m == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < w.rows; ++n) y[n] = dot_f32(W + n * w.cols, x, w.cols);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(w.rows), int(w.cols), 1.0f, x,
              int(w.cols), W, int(w.cols), 0.0f, y, int(w.rows));
}

// Weight rows in tiles small enough to stay in L1 while every activation row passes over them;
// the tiles are shared among the threads.
template <typename Body>
static void over_row_tiles(int64_t rows, Body body) {
  const int64_t tile = 16, ntiles = (rows + tile - 1) / tile;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < ntiles; ++t) body(t * tile, std::min(rows, t * tile + tile));
}

static void matmul_quant(const WeightMatrix& w, const float* x, float* y, int64_t m, QuantDotFn dot) {
  const int64_t nb = w.cols / kQBlock;
  thread_local std::vector<ActQ8> xq;
  xq.resize(size_t(m * nb));
  for (int64_t i = 0; i < m; ++i) quantize_act_q8(x + i * w.cols, xq.data() + i * nb, w.cols);
  const ActQ8* xqp = xq.data();
  over_row_tiles(w.rows, [&](int64_t n0, int64_t n1) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t n = n0; n < n1; ++n) y[i * w.rows + n] = dot(w.data + n * w.row_bytes, xqp + i * nb, nb);
  });
}

static void matmul_q4_1x4(const WeightMatrix& w, const float* x, float* y, int64_t m) {
  const int64_t nb = w.cols / kQBlock;
  const size_t xb = act_q8x4_bytes(w.cols);
  thread_local std::vector<uint8_t> xq;
  xq.resize(m * xb);
  for (int64_t i = 0; i < m; ++i) quantize_act_q8x4(x + i * w.cols, xq.data() + i * xb, w.cols);
  const uint8_t* xqp = xq.data();
  over_row_tiles(w.rows, [&](int64_t n0, int64_t n1) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      const uint8_t* rows[4] = {xqp + i * xb, xqp + (i + 1) * xb, xqp + (i + 2) * xb, xqp + (i + 3) * xb};
      for (int64_t n = n0; n < n1; ++n) {
        float out[4];
        dot_q4_1x4_rows4(w.data + n * w.row_bytes, rows, nb, out);
        for (int r = 0; r < 4; ++r) y[(i + r) * w.rows + n] = out[r];
      }
    }
    for (; i < m; ++i)
      for (int64_t n = n0; n < n1; ++n) y[i * w.rows + n] = dot_q4_1x4(w.data + n * w.row_bytes, xqp + i * xb, nb);
  });
}

void matmul(const WeightMatrix& w, const float* x, float* y, int64_t m) {
  if (w.lut) return w.lut->int8 ? lut_matmul_int8(*w.lut, x, y, m) : lut_matmul(*w.lut, x, y, m);
  if (w.q4_1x4) return matmul_q4_1x4(w, x, y, m);
  switch (w.type) {
    case DType::F32: return matmul_f32(w, x, y, m);
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q8_0: return matmul_quant(w, x, y, m, quant_dot(w.type));
    default: fail("matmul: no kernel for {} (weights must be prepared first)", io::dtype_name(w.type));
  }
}

}  // namespace ik::backend
