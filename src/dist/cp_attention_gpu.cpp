#include "dist/cp_attention_gpu.hpp"

#include "core/error.hpp"

namespace ik::dist {

namespace cuda = backend::cuda;

CpGpuRing::CpGpuRing(NcclComm& comm, Layout layout, int64_t T, const AttnShape& shape)
    : comm_(comm), layout_(layout), shape_(shape) {
  const int P = comm.size();
  const int64_t unit = layout == Layout::ZigZag ? 2 * P : P;
  IK_CHECK(T >= unit && T % unit == 0, "context-parallel attention on GPUs: T = {} must be a multiple of {} ({} over {} ranks)",
           T, unit, layout_name(layout), P);
  IK_CHECK(shape.n_head % shape.n_kv == 0, "{} query heads are not a multiple of {} KV heads", shape.n_head, shape.n_kv);
  n_ = T / P;
  const size_t q = size_t(n_) * shape.n_head * shape.head_dim, rows = size_t(n_) * shape.n_head;
  const size_t kv = 2 * size_t(n_) * shape.n_kv * shape.head_dim;
  o_ = static_cast<float*>(cuda::alloc(q * 4, "attention output"));
  part_o_ = static_cast<float*>(cuda::alloc(q * 4, "attention block output"));
  lse_ = static_cast<float*>(cuda::alloc(rows * 4, "log-sum-exp"));
  part_lse_ = static_cast<float*>(cuda::alloc(rows * 4, "log-sum-exp"));
  for (auto& b : buf_) b = static_cast<cuda::bf16*>(cuda::alloc(kv * 2, "K/V ring buffers"));
  ready_ = cuda::create_event();
  received_ = cuda::create_event();
}

CpGpuRing::~CpGpuRing() {
  for (void* p : {static_cast<void*>(o_), static_cast<void*>(part_o_), static_cast<void*>(lse_),
                  static_cast<void*>(part_lse_), static_cast<void*>(buf_[0]), static_cast<void*>(buf_[1]),
                  static_cast<void*>(buf_[2])})
    cuda::release(p);
  cuda::destroy_event(ready_);
  cuda::destroy_event(received_);
}

// This rank's queries against the K/V block of rank s, merged into o_/lse_.
void CpGpuRing::block(int s, const float* q, int q_stride, const cuda::bf16* kv) {
  const int r = comm_.rank(), H = shape_.n_head, KVH = shape_.n_kv, hd = shape_.head_dim, n = int(n_);
  const int Qd = H * hd;
  const cuda::bf16 *k = kv, *v = kv + size_t(n) * KVH * hd;
  // m queries from row q0 against keys [0, n_past) all visible plus the next m with diag.
  auto run = [&](int q0, int m, int n_past, int diag) {
    cuda::attention_block(q + size_t(q0) * q_stride, q_stride, k, v, m, n_past, H, KVH, hd, diag, part_o_ + size_t(q0) * Qd,
                          part_lse_ + size_t(q0) * H);
    cuda::attention_merge(o_ + size_t(q0) * Qd, lse_ + size_t(q0) * H, part_o_ + size_t(q0) * Qd,
                          part_lse_ + size_t(q0) * H, m, H, hd);
  };
  switch (layout_) {
    case Layout::Ring:
      if (s == r) run(0, n, 0, 0);
      else if (s < r) run(0, n, n, -n);
      break;
    case Layout::Striped:
      run(0, n, 0, s <= r ? 0 : -1);
      break;
    case Layout::ZigZag: {
      const int c = n / 2;
      if (s == r) run(0, n, 0, 0);
      else if (s < r) run(0, n, c, -n);  // every query sees the earlier rank's first chunk
      else run(c, c, n, -c);             // only the last query chunk sees the later rank's chunks
      break;
    }
  }
}

void CpGpuRing::run(const float* q, int q_stride, const cuda::bf16* k, const cuda::bf16* v) {
  const int P = comm_.size(), r = comm_.rank();
  const size_t half = size_t(n_) * shape_.n_kv * shape_.head_dim * sizeof(cuda::bf16);
  cuda::fill_f32(o_, size_t(n_) * shape_.n_head * shape_.head_dim, 0.0f);
  cuda::fill_f32(lse_, size_t(n_) * shape_.n_head, -INFINITY);
  // The own block as one [2][n][kv] buffer, so a round sends one contiguous message.
  cuda::copy_async(buf_[2], k, half);
  cuda::copy_async(reinterpret_cast<char*>(buf_[2]) + half, v, half);
  void* main = cuda::main_stream();
  void* side = P > 1 ? cuda::side_stream() : nullptr;
  const cuda::bf16* cur = buf_[2];
  for (int t = 0; t < P; ++t) {
    if (t > 0) cuda::wait(main, received_);  // this round's block has arrived
    cuda::bf16* next = buf_[t % 2];          // last read by round t - 1, now finished on main
    if (t < P - 1) {
      cuda::record(ready_, main);
      cuda::wait(side, ready_);
      comm_.send_recv_on(cur, (r + 1) % P, next, (r - 1 + P) % P, 2 * half, side);
      cuda::record(received_, side);
    }
    block((r - t + P) % P, q, q_stride, cur);
    cur = next;
  }
}

}  // namespace ik::dist
