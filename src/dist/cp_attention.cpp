// Ring / striped / zig-zag attention: layout arithmetic, the per-round block kernel and the
// ring schedule.
#include "dist/cp_attention.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>

#include "backend/cpu/simd.hpp"
#include "core/error.hpp"

namespace ik::dist {

Layout parse_layout(const std::string& name) {
  if (name == "ring") return Layout::Ring;
  if (name == "striped") return Layout::Striped;
  if (name == "zigzag") return Layout::ZigZag;
  fail("unknown layout '{}' (expected ring, striped or zigzag)", name);
}

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::Ring: return "ring";
    case Layout::Striped: return "striped";
    case Layout::ZigZag: return "zigzag";
  }
  return "?";
}

static void check_sizes(int P, int64_t T) {
  IK_CHECK(P >= 1, "context parallelism needs at least 1 rank, got {}", P);
  IK_CHECK(T >= P, "sequence length {} is smaller than the number of ranks {}", T, P);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t shard_len(Layout layout, int P, int64_t T) {
  check_sizes(P, T);
  return layout == Layout::ZigZag ? 2 * ceil_div(T, 2 * P) : ceil_div(T, P);
}

int64_t global_index(Layout layout, int P, int64_t T, int rank, int64_t local) {
  const int64_t n = shard_len(layout, P, T);
  switch (layout) {
    case Layout::Ring: return rank * n + local;
    case Layout::Striped: return local * P + rank;
    case Layout::ZigZag: {
      const int64_t c = n / 2;
      return local < c ? rank * c + local : (2 * P - 1 - rank) * c + (local - c);
    }
  }
  return -1;
}

// Keys of a contiguous run [start, start+len) at or before global position g.
static int64_t run_prefix(int64_t g, int64_t start, int64_t len) { return std::clamp<int64_t>(g - start + 1, 0, len); }

int64_t visible_keys(Layout layout, int P, int64_t T, int q_rank, int64_t i, int k_rank) {
  const int64_t g = global_index(layout, P, T, q_rank, i);
  if (g >= T) return 0;  // padding query: not computed
  const int64_t n = shard_len(layout, P, T);
  switch (layout) {
    case Layout::Ring: return run_prefix(g, k_rank * n, n);
    case Layout::Striped: return std::min(n, q_rank >= k_rank ? i + 1 : i);  // the paper's per-round rule
    case Layout::ZigZag: {
      const int64_t c = n / 2;
      return run_prefix(g, k_rank * c, c) + run_prefix(g, (2 * P - 1 - k_rank) * c, c);
    }
  }
  return 0;
}

std::vector<int64_t> round_work(Layout layout, int P, int64_t T, int round) {
  const int64_t n = shard_len(layout, P, T);
  std::vector<int64_t> work(P, 0);
  for (int q = 0; q < P; ++q) {
    const int k = ((q - round) % P + P) % P;
    for (int64_t i = 0; i < n; ++i) work[q] += visible_keys(layout, P, T, q, i, k);
  }
  return work;
}

namespace {

// Online-softmax state of one (query, head): running max m, denominator l; the numerator
// accumulates in the output row.
struct Partial {
  float m = -std::numeric_limits<float>::infinity();
  float l = 0;
};

struct Block {
  Layout layout;
  int P;
  int64_t T, n;
  AttnShape s;
};

// Adds the contribution of one K/V block (from rank k_rank) to this rank's queries.
// `poll` is called every few rows so MPI progresses the ring transfer during compute.
template <typename Poll>
void attend_block(const Block& b, int q_rank, int k_rank, const float* q, const float* kblk, const float* vblk,
                  float* acc, Partial* part, std::vector<float>& scores, Poll&& poll) {
  const int hd = b.s.head_dim, group = b.s.n_head / b.s.n_kv;
  const float scale = 1.0f / std::sqrt(float(hd));
  for (int64_t i = 0; i < b.n; ++i) {
    if ((i & 7) == 0) poll();
    const int64_t nvis = visible_keys(b.layout, b.P, b.T, q_rank, i, k_rank);
    if (nvis == 0) continue;
    for (int h = 0; h < b.s.n_head; ++h) {
      const int g = h / group;
      const float* qv = q + (i * b.s.n_head + h) * hd;
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < nvis; ++j) {
        scores[j] = backend::dot_f32(qv, kblk + (j * b.s.n_kv + g) * hd, hd) * scale;
        block_max = std::max(block_max, scores[j]);
      }
      Partial& p = part[i * b.s.n_head + h];
      float* o = acc + (i * b.s.n_head + h) * hd;
      if (block_max > p.m) {  // rescale what was accumulated under the old max
        const float r = std::exp(p.m - block_max);
        p.l *= r;
        for (int d = 0; d < hd; ++d) o[d] *= r;
        p.m = block_max;
      }
      for (int64_t j = 0; j < nvis; ++j) {
        const float w = std::exp(scores[j] - p.m);
        p.l += w;
        backend::axpy_f32(w, vblk + (j * b.s.n_kv + g) * hd, o, hd);
      }
    }
  }
}

// CPU time of the calling thread: on a shared, oversubscribed machine it counts only the
// cycles this computation got, not the time other processes held the core.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void cp_attention(Comm& comm, Layout layout, int64_t T, const AttnShape& shape, std::span<const float> q,
                  std::span<const float> k, std::span<const float> v, std::span<float> out, CpStats* stats) {
  const int P = comm.size(), me = comm.rank();
  IK_CHECK(shape.n_head > 0 && shape.n_kv > 0 && shape.head_dim > 0, "attention shape must be positive");
  IK_CHECK(shape.n_head % shape.n_kv == 0, "n_head {} is not a multiple of n_kv {}", shape.n_head, shape.n_kv);
  const Block b{layout, P, T, shard_len(layout, P, T), shape};
  const size_t q_size = size_t(b.n) * shape.n_head * shape.head_dim;
  const size_t kv_size = size_t(b.n) * shape.n_kv * shape.head_dim;
  IK_CHECK(q.size() == q_size && out.size() == q_size, "q/out hold {}/{} floats, expected {}", q.size(), out.size(),
           q_size);
  IK_CHECK(k.size() == kv_size && v.size() == kv_size, "k/v hold {}/{} floats, expected {}", k.size(), v.size(),
           kv_size);

  // One message per round: K block then V block.
  std::vector<float> cur(2 * kv_size), next(2 * kv_size);
  std::copy(k.begin(), k.end(), cur.begin());
  std::copy(v.begin(), v.end(), cur.begin() + kv_size);
  std::fill(out.begin(), out.end(), 0.0f);
  std::vector<Partial> part(size_t(b.n) * shape.n_head);
  std::vector<float> scores(b.n);
  const int right = (me + 1) % P, left = (me - 1 + P) % P;
  CpStats st;

  for (int round = 0; round < P; ++round) {
    Request send, recv;
    if (round + 1 < P) {  // start passing the block on while computing with it (MPI-3 allows reading a send buffer)
      recv = comm.irecv(next, left, round);
      send = comm.isend(cur, right, round);
    }
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = thread_cpu_seconds();
    const int k_rank = (me - round + P) % P;
    attend_block(b, me, k_rank, q.data(), cur.data(), cur.data() + kv_size, out.data(), part.data(), scores,
                 [&] { send.test(), recv.test(); });
    const auto t1 = std::chrono::steady_clock::now();
    st.compute_s += std::chrono::duration<double>(t1 - t0).count();
    st.compute_cpu_s += thread_cpu_seconds() - cpu0;
    recv.wait();
    send.wait();
    st.wait_s += seconds_since(t1);
    std::swap(cur, next);
  }

  const int hd = shape.head_dim;
  for (size_t r = 0; r < part.size(); ++r) {
    if (part[r].l == 0) continue;  // padding query: stays zero
    const float inv = 1.0f / part[r].l;
    for (int d = 0; d < hd; ++d) out[r * hd + d] *= inv;
  }
  if (stats) *stats = st;
}

std::vector<std::vector<double>> virtual_ring_seconds(Layout layout, int P, int64_t T, const AttnShape& shape,
                                                      std::span<const float> q, std::span<const float> k,
                                                      std::span<const float> v) {
  IK_CHECK(shape.n_head % shape.n_kv == 0, "n_head {} is not a multiple of n_kv {}", shape.n_head, shape.n_kv);
  const Block b{layout, P, T, shard_len(layout, P, T), shape};
  const int64_t qw = int64_t(shape.n_head) * shape.head_dim, kw = int64_t(shape.n_kv) * shape.head_dim;
  std::vector<std::vector<float>> qs, ks, vs, acc;
  std::vector<std::vector<Partial>> parts;
  for (int r = 0; r < P; ++r) {
    qs.push_back(shard_rows(layout, P, r, T, q, qw));
    ks.push_back(shard_rows(layout, P, r, T, k, kw));
    vs.push_back(shard_rows(layout, P, r, T, v, kw));
    acc.emplace_back(qs.back().size(), 0.0f);
    parts.emplace_back(size_t(b.n) * shape.n_head);
  }
  std::vector<float> scores(b.n);
  std::vector<std::vector<double>> seconds(P, std::vector<double>(P, 0.0));
  for (int round = 0; round < P; ++round)
    for (int me = 0; me < P; ++me) {
      const int k_rank = (me - round + P) % P;
      const double t0 = thread_cpu_seconds();
      attend_block(b, me, k_rank, qs[me].data(), ks[k_rank].data(), vs[k_rank].data(), acc[me].data(),
                   parts[me].data(), scores, [] {});
      seconds[round][me] = thread_cpu_seconds() - t0;
    }
  return seconds;
}

std::vector<float> shard_rows(Layout layout, int P, int rank, int64_t T, std::span<const float> full, int64_t width) {
  IK_CHECK(int64_t(full.size()) == T * width, "shard_rows: input holds {} floats, expected {}", full.size(), T * width);
  const int64_t n = shard_len(layout, P, T);
  std::vector<float> local(size_t(n * width), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = global_index(layout, P, T, rank, i);
    if (g < T) std::copy_n(full.begin() + g * width, width, local.begin() + i * width);
  }
  return local;
}

std::vector<float> gather_rows(Comm& comm, Layout layout, int64_t T, std::span<const float> local, int64_t width) {
  const int P = comm.size();
  const int64_t n = shard_len(layout, P, T);
  IK_CHECK(int64_t(local.size()) == n * width, "gather_rows: local holds {} floats, expected {}", local.size(),
           n * width);
  std::vector<float> all(size_t(P * n * width));
  comm.all_gather(local, all);
  std::vector<float> full(size_t(T * width));
  for (int r = 0; r < P; ++r)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = global_index(layout, P, T, r, i);
      if (g < T) std::copy_n(all.begin() + (r * n + i) * width, width, full.begin() + g * width);
    }
  return full;
}

}  // namespace ik::dist
