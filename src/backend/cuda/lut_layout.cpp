#include "backend/cuda/lut_layout.hpp"

#include "core/error.hpp"
#include "core/fp16.hpp"

namespace ik::backend::cuda {

namespace {

// The column (0..127 in the chunk) of a lane's tile t, register half hk, element e.
int column_of(int tid, int t, int hk, int e) { return (t / 2) * 32 + tid * 8 + (t % 2) * 4 + hk * 2 + e; }

// Byte offset of lane `lane`'s 16-byte piece `q` inside a code block.
size_t piece_offset(int q, int lane) { return size_t(q) * 512 + size_t(lane) * 16; }

// Where a lane's word w of a 3-bit block sits: words 0-3 are its 16-byte piece, words 4-5
// follow all lanes' pieces as [lane][8 B].
size_t word3_offset(int lane, int w) {
  return w < 4 ? piece_offset(0, lane) + size_t(w) * 4 : 512 + size_t(lane) * 8 + size_t(w - 4) * 4;
}

// Bit of a lane's 192-bit 3-bit stream where code (t, r, e) starts: register pair p = 4t + r is
// the 6-bit field c(r,0) | c(r,1) << 3 at bit 6p (a field may straddle two words).
int stream3_bit(int t, int r, int e) { return 6 * (4 * t + r) + 3 * e; }

// Set code c (b bits) of register r, element e, tile t in one lane's words.
void put_code(uint8_t* block, int bits, int lane, int t, int r, int e, int c) {
  auto word = [&](size_t byte_off) { return reinterpret_cast<uint32_t*>(block + byte_off); };
  if (bits == 4) {
    *word(piece_offset(t / 4, lane) + (t % 4) * 4) |= uint32_t(c) << (8 * r + 4 * e);
  } else if (bits == 2) {
    *word(piece_offset(0, lane) + (t / 2) * 4) |= uint32_t(c) << (16 * (t % 2) + 4 * r + 2 * e);
  } else {
    for (int i = 0, bit = stream3_bit(t, r, e); i < 3; ++i, ++bit)
      *word(word3_offset(lane, bit / 32)) |= uint32_t((c >> i) & 1) << (bit % 32);
  }
}

int get_code(const uint8_t* block, int bits, int lane, int t, int r, int e) {
  auto word = [&](size_t byte_off) { return *reinterpret_cast<const uint32_t*>(block + byte_off); };
  if (bits == 4) return (word(piece_offset(t / 4, lane) + (t % 4) * 4) >> (8 * r + 4 * e)) & 15;
  if (bits == 2) return (word(piece_offset(0, lane) + (t / 2) * 4) >> (16 * (t % 2) + 4 * r + 2 * e)) & 3;
  int c = 0;
  for (int i = 0, bit = stream3_bit(t, r, e); i < 3; ++i, ++bit)
    c |= int((word(word3_offset(lane, bit / 32)) >> (bit % 32)) & 1) << i;
  return c;
}

// Index of the scale pair for (rb, kc, group-in-chunk gc, gid).
size_t scale_index(const LutPacked& p, int64_t rb, int64_t kc, int gc, int gid) {
  return (((size_t(rb) * p.chunks + kc) * groups_per_chunk(p.group) + gc) * 8 + gid) * 2;
}

}  // namespace

LutPacked pack_lut(const uint8_t* codes, const uint16_t* scales_f16, const float* table, int64_t rows, int64_t cols,
                   int bits, int group) {
  IK_CHECK(bits == 2 || bits == 3 || bits == 4, "GPU lookup-table weights: {} bits unsupported (2, 3 or 4)", bits);
  IK_CHECK(group == 32 || group == 64 || group == 128 || group == 256,
           "GPU lookup-table weights: group {} unsupported (32, 64, 128 or 256)", group);
  IK_CHECK(rows > 0 && cols > 0 && cols % 32 == 0, "GPU lookup-table weights: {} x {} cannot be tiled (columns must be "
           "a positive multiple of 32)", rows, cols);
  LutPacked p;
  p.bits = bits;
  p.group = group;
  p.rows = rows;
  p.cols = cols;
  p.row_blocks = (rows + kLutRowBlock - 1) / kLutRowBlock;
  p.chunks = (cols + kLutChunk - 1) / kLutChunk;
  p.table.assign(table, table + (1 << bits));
  const int cb = code_block_bytes(bits), gpc = groups_per_chunk(group);
  const int64_t n_groups = (cols + group - 1) / group;
  p.codes.assign(size_t(p.row_blocks) * p.chunks * cb, 0);
  p.scales.assign(size_t(p.row_blocks) * p.chunks * 8 * gpc * 2, 0);  // 0 = f16 zero: padding contributes nothing
  for (int64_t rb = 0; rb < p.row_blocks; ++rb)
    for (int64_t kc = 0; kc < p.chunks; ++kc) {
      uint8_t* block = p.codes.data() + (size_t(rb) * p.chunks + kc) * cb;
      for (int lane = 0; lane < 32; ++lane) {
        const int gid = lane / 4, tid = lane % 4;
        for (int h = 0; h < 2; ++h) {
          const int64_t row = rb * kLutRowBlock + gid + 8 * h;
          if (row >= rows) continue;
          for (int t = 0; t < 8; ++t)
            for (int hk = 0; hk < 2; ++hk)
              for (int e = 0; e < 2; ++e) {
                const int64_t col = kc * kLutChunk + column_of(tid, t, hk, e);
                if (col >= cols) continue;
                const int c = codes[row * cols + col];
                IK_CHECK(c < (1 << bits), "code {} does not fit {} bits", c, bits);
                put_code(block, bits, lane, t, h + 2 * hk, e, c);
              }
          if (tid != 0) continue;  // the four lanes of a gid share the scales
          for (int gc = 0; gc < gpc; ++gc) {
            const int64_t first_col = kc * kLutChunk + gc * (kLutChunk / gpc);
            if (first_col < cols)
              p.scales[scale_index(p, rb, kc, gc, gid) + h] = scales_f16[row * n_groups + first_col / group];
          }
        }
      }
    }
  return p;
}

std::vector<float> unpack_lut(const LutPacked& p) {
  std::vector<float> w(size_t(p.rows) * p.cols, 0.0f);
  const int cb = code_block_bytes(p.bits);
  for (int64_t rb = 0; rb < p.row_blocks; ++rb)
    for (int64_t kc = 0; kc < p.chunks; ++kc) {
      const uint8_t* block = p.codes.data() + (size_t(rb) * p.chunks + kc) * cb;
      for (int lane = 0; lane < 32; ++lane) {
        const int gid = lane / 4, tid = lane % 4;
        for (int t = 0; t < 8; ++t)
          for (int r = 0; r < 4; ++r)
            for (int e = 0; e < 2; ++e) {
              const int h = r % 2, hk = r / 2;
              const int64_t row = rb * kLutRowBlock + gid + 8 * h;
              const int64_t col = kc * kLutChunk + column_of(tid, t, hk, e);
              if (row >= p.rows || col >= p.cols) continue;
              const int gc = (t / 2) * 32 / (kLutChunk / groups_per_chunk(p.group));
              const float s = fp16_to_f32(p.scales[scale_index(p, rb, kc, gc, gid) + h]);
              w[row * p.cols + col] = p.table[get_code(block, p.bits, lane, t, r, e)] * s;
            }
      }
    }
  return w;
}

std::vector<uint32_t> pair_table(const std::vector<float>& table, int bits, bool bf16) {
  IK_CHECK(int(table.size()) == (1 << bits), "pair table: {} entries for {} bits", table.size(), bits);
  auto half = [&](float v) -> uint32_t { return bf16 ? f32_to_bf16(v) : f32_to_fp16(v); };
  const int n = 1 << (2 * bits);
  std::vector<uint32_t> out(n);
  for (int i = 0; i < n; ++i) {
    const int lo = i & ((1 << bits) - 1), hi = i >> bits;  // the pair's first and second code
    out[i] = half(table[lo]) | half(table[hi]) << 16;
  }
  return out;
}

}  // namespace ik::backend::cuda
