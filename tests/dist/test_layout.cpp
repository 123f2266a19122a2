// Pure layout tests (no MPI): the striped per-round mask rule and every layout's visible-key
// prefix against the global causal mask, the work table against the reference notes, and
// the kernel through LocalComm against direct causal attention.
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "core/error.hpp"
#include "reference_attention.hpp"

using namespace ik::dist;

static const Layout kLayouts[] = {Layout::Ring, Layout::Striped, Layout::ZigZag};

TEST(DistStripedMask, PerRoundRuleEqualsGlobalCausalMask) {
  // Striped: local i on rank q is global i*D + q. The rule must equal key_global <= query_global.
  for (int D = 1; D <= 8; ++D)
    for (int n = 1; n <= 64; n += (n < 8 ? 1 : 7))
      for (int q = 0; q < D; ++q)
        for (int k = 0; k < D; ++k)
          for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
              ASSERT_EQ(striped_visible(i, q, j, k), int64_t(j) * D + k <= int64_t(i) * D + q)
                  << "D=" << D << " n=" << n << " q=" << q << " k=" << k << " i=" << i << " j=" << j;
}

TEST(DistLayouts, EveryTokenHeldExactlyOnce) {
  for (Layout layout : kLayouts)
    for (int P = 1; P <= 6; ++P)
      for (int64_t T = P; T <= 41; ++T) {
        std::set<int64_t> seen;
        const int64_t n = shard_len(layout, P, T);
        for (int r = 0; r < P; ++r)
          for (int64_t i = 0; i < n; ++i) {
            const int64_t g = global_index(layout, P, T, r, i);
            EXPECT_TRUE(seen.insert(g).second) << layout_name(layout) << " duplicate " << g;
            if (i > 0) {
              EXPECT_LT(global_index(layout, P, T, r, i - 1), g);  // increasing within a shard
            }
          }
        EXPECT_EQ(int64_t(seen.size()), P * n);
        for (int64_t t = 0; t < T; ++t) EXPECT_TRUE(seen.count(t)) << layout_name(layout) << " misses token " << t;
      }
}

TEST(DistLayouts, VisibleKeysArePrefixOfGlobalCausalMask) {
  for (Layout layout : kLayouts)
    for (int P = 1; P <= 6; ++P)
      for (int64_t T = P; T <= 37; T += 1 + T / 9) {
        const int64_t n = shard_len(layout, P, T);
        for (int q = 0; q < P; ++q)
          for (int k = 0; k < P; ++k)
            for (int64_t i = 0; i < n; ++i) {
              const int64_t gq = global_index(layout, P, T, q, i);
              const int64_t nvis = visible_keys(layout, P, T, q, i, k);
              for (int64_t j = 0; j < n; ++j) {
                const int64_t gk = global_index(layout, P, T, k, j);
                const bool expect = gq < T && gk < T && gk <= gq;
                ASSERT_EQ(j < nvis, expect) << layout_name(layout) << " P=" << P << " T=" << T << " q=" << q
                                            << " i=" << i << " k=" << k << " j=" << j;
              }
            }
      }
}

TEST(DistWorkTable, MatchesReferenceNotesAtD4n8) {
  // Reference (llm.md 4a): striped per-device {36, 28}, max 36 each round; ring max {36, 64, 64, 64}.
  const int D = 4;
  const int64_t T = 32;
  for (int r = 0; r < D; ++r) {
    const auto s = round_work(Layout::Striped, D, T, r);
    for (int64_t w : s) EXPECT_TRUE(w == 36 || w == 28) << w;
    EXPECT_EQ(*std::max_element(s.begin(), s.end()), 36);
    const auto ring = round_work(Layout::Ring, D, T, r);
    EXPECT_EQ(*std::max_element(ring.begin(), ring.end()), r == 0 ? 36 : 64);
  }
}

TEST(DistWorkTable, EveryLayoutComputesTheWholeTriangle) {
  for (Layout layout : kLayouts)
    for (int P : {1, 2, 3, 5, 8})
      for (int64_t T : {int64_t(P), int64_t(17), int64_t(64), int64_t(100)}) {
        if (T < P) continue;
        int64_t total = 0;
        for (int r = 0; r < P; ++r) {
          const auto w = round_work(layout, P, T, r);
          total = std::accumulate(w.begin(), w.end(), total);
        }
        EXPECT_EQ(total, T * (T + 1) / 2) << layout_name(layout) << " P=" << P << " T=" << T;
      }
}

TEST(DistBadInput, SequenceShorterThanRanksAndUnknownLayout) {
  EXPECT_THROW(shard_len(Layout::Striped, 4, 3), ik::Error);
  EXPECT_THROW(parse_layout("diagonal"), ik::Error);
  LocalComm comm;
  const AttnShape bad{3, 2, 4};  // 3 heads over 2 KV heads
  std::vector<float> q(3 * 4 * 5), kv(2 * 4 * 5), out(q.size());
  EXPECT_THROW(cp_attention(comm, Layout::Ring, 5, bad, q, kv, kv, out), ik::Error);
}

TEST(DistLocalComm, KernelEqualsDirectCausalAttention) {
  LocalComm comm;
  const AttnShape s{4, 2, 16};
  for (int64_t T : {1, 7, 33}) {
    const auto q = ik::dist::testing::random_rows(T, 4 * 16, 1), k = ik::dist::testing::random_rows(T, 2 * 16, 2),
               v = ik::dist::testing::random_rows(T, 2 * 16, 3);
    const auto want = ik::dist::testing::causal_attention(q, k, v, T, s);
    for (Layout layout : kLayouts) {
      const auto got = ik::dist::testing::sharded_attention(comm, layout, T, s, q, k, v);
      for (size_t e = 0; e < want.size(); ++e) ASSERT_NEAR(got[e], want[e], 2e-5) << layout_name(layout) << " T=" << T;
    }
  }
}
