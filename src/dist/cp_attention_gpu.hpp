#pragma once
// Context-parallel causal attention on GPUs: the ring of cp_attention.hpp with one process per
// GPU and NCCL. Each rank holds its queries and its K/V block on the device; in round t it
// computes its queries against the K/V block of rank (r - t) mod P (backend::cuda
// attention_block: f32 output and log-sum-exp) and merges it online (attention_merge), while the
// side stream sends the block on to rank r + 1 and receives the next from rank r - 1.
// Blocks per layout (n = shard length): ring: causal (own), full (earlier rank), none (later);
// striped: causal (key rank <= query rank) or strictly causal; zig-zag (chunks r, 2P-1-r of
// size c = n/2): causal (own), all queries x first key chunk (earlier rank), last query chunk x
// all keys (later rank). T must be a multiple of P (2P for zig-zag): no padding on the GPU path.
// Compiled only with NCCL (IK_HAVE_NCCL).
#include <cstdint>

#include "backend/cuda/cuda.hpp"
#include "dist/comm_nccl.hpp"
#include "dist/cp_attention.hpp"

namespace ik::dist {

class CpGpuRing {
 public:
  // Buffers for this rank's shard; collective over comm (every rank the same layout, T, shape).
  CpGpuRing(NcclComm& comm, Layout layout, int64_t T, const AttnShape& shape);
  ~CpGpuRing();
  CpGpuRing(const CpGpuRing&) = delete;
  CpGpuRing& operator=(const CpGpuRing&) = delete;

  int64_t shard() const { return n_; }
  // q: n rows of n_head*head_dim f32, q_stride floats apart; k, v: [n][n_kv*head_dim] bf16; all
  // on this rank's device, in its layout's token order, already rotated. Queued on the main
  // stream; the inputs may be reused once it has run.
  void run(const float* q, int q_stride, const backend::cuda::bf16* k, const backend::cuda::bf16* v);
  const float* out() const { return o_; }    // [n][n_head*head_dim]
  const float* lse() const { return lse_; }  // [n][n_head]

 private:
  void block(int src_rank, const float* q, int q_stride, const backend::cuda::bf16* kv);
  NcclComm& comm_;
  Layout layout_;
  AttnShape shape_;
  int64_t n_ = 0;
  float *o_ = nullptr, *lse_ = nullptr, *part_o_ = nullptr, *part_lse_ = nullptr;
  backend::cuda::bf16* buf_[3] = {nullptr, nullptr, nullptr};  // own block, then two ring buffers
  backend::cuda::Event ready_, received_;
};

}  // namespace ik::dist
