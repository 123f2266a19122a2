// Run under mpirun -np P (P = 1..4): every rank runs the same tests in the same order.
// Collectives, the timeout rule, async overlap, and ring / striped / zig-zag attention
// against direct single-rank causal attention.
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.hpp"
#include "reference_attention.hpp"
#include "mpi_test_main.hpp"

using namespace ik::dist;

static MpiComm* g_comm = nullptr;  // the world communicator, made in main()

TEST(DistComm, CollectivesAndRing) {
  MpiComm& c = *g_comm;
  const int P = c.size(), me = c.rank();
  std::vector<float> x = {float(me), 1.0f, float(me * me)};
  c.all_reduce_sum(x);
  EXPECT_EQ(x[0], float(P * (P - 1) / 2));
  EXPECT_EQ(x[1], float(P));
  EXPECT_EQ(x[2], float((P - 1) * P * (2 * P - 1) / 6));

  std::vector<float> mine = {float(10 * me), float(10 * me + 1)}, all(2 * P);
  c.all_gather(mine, all);
  for (int r = 0; r < P; ++r) {
    EXPECT_EQ(all[2 * r], 10.0f * r);
    EXPECT_EQ(all[2 * r + 1], 10.0f * r + 1);
  }

  std::vector<float> b = {me == P - 1 ? 42.0f : -1.0f};
  c.broadcast(b, P - 1);
  EXPECT_EQ(b[0], 42.0f);

  if (P > 1) {  // pass a token round the ring with the async calls
    std::vector<float> out = {float(me)}, in = {-1.0f};
    Request r = c.irecv(in, (me - 1 + P) % P, 5);
    Request s = c.isend(out, (me + 1) % P, 5);
    r.wait();
    s.wait();
    EXPECT_EQ(in[0], float((me - 1 + P) % P));
  }
  EXPECT_THROW(c.send(mine, P, 0), ik::Error);  // rank out of range
}

TEST(DistComm, AsyncAllReduceReturnsBeforePeersJoin) {
  // Rank 0 launches the all-reduce, then (and only then) tells the others to join. If the
  // launch blocked until completion, rank 0 would never send the go-ahead: every rank
  // would time out. And the sum cannot be complete before the go-ahead, so test() is
  // false deterministically.
  MpiComm c;
  c.set_timeout(20);
  const int P = c.size(), me = c.rank();
  if (P == 1) GTEST_SKIP() << "needs 2 ranks";
  std::vector<float> x = {float(me + 1)}, go = {1.0f};
  if (me == 0) {
    Request sum = c.iall_reduce_sum(x);
    EXPECT_FALSE(sum.test());
    for (int r = 1; r < P; ++r) c.send(go, r, 9);
    sum.wait();
  } else {
    c.recv(go, 0, 9);
    c.all_reduce_sum(x);
  }
  EXPECT_EQ(x[0], float(P * (P + 1) / 2));
}

TEST(DistComm, MissingRankGivesTimeoutErrorOnEveryRank) {
  // The last rank skips the all-reduce and waits for a result rank 0 would send after it.
  MpiComm c;  // its own communicator: it is unusable after the timeout
  c.set_timeout(1.0);
  const int P = c.size(), me = c.rank();
  if (P == 1) GTEST_SKIP() << "needs 2 ranks";
  std::vector<float> x = {1.0f};
  bool threw = false;
  std::string msg;
  try {
    if (me == P - 1) {
      c.recv(x, 0, 3);
    } else {
      c.all_reduce_sum(x);
      if (me == 0) c.send(x, P - 1, 3);
    }
  } catch (const ik::Error& e) {
    threw = true;
    msg = e.what();
  }
  EXPECT_TRUE(threw);
  EXPECT_NE(msg.find("did not complete within 1 s"), std::string::npos) << msg;
  EXPECT_THROW(c.barrier(), ik::Error);  // broken after the timeout
  g_comm->barrier();                     // the world communicator still works
}

struct Case {
  int64_t T;
  AttnShape s;
};

TEST(DistCpAttention, EqualsSingleRankCausalAttention) {
  MpiComm& c = *g_comm;
  const int P = c.size();
  // Odd lengths, lengths not divisible by P (padding), T = P, grouped-query attention.
  const Case cases[] = {{int64_t(P), {2, 2, 8}}, {7, {4, 2, 16}}, {13, {3, 1, 8}}, {33, {4, 1, 32}}, {64, {2, 2, 16}}};
  for (const Case& cs : cases) {
    if (cs.T < P) continue;
    const auto q = ik::dist::testing::random_rows(cs.T, cs.s.n_head * cs.s.head_dim, 11);
    const auto k = ik::dist::testing::random_rows(cs.T, cs.s.n_kv * cs.s.head_dim, 12);
    const auto v = ik::dist::testing::random_rows(cs.T, cs.s.n_kv * cs.s.head_dim, 13);
    const auto want = ik::dist::testing::causal_attention(q, k, v, cs.T, cs.s);
    for (Layout layout : {Layout::Ring, Layout::Striped, Layout::ZigZag}) {
      const auto got = ik::dist::testing::sharded_attention(c, layout, cs.T, cs.s, q, k, v);
      double worst = 0;
      for (size_t e = 0; e < want.size(); ++e) worst = std::max(worst, double(std::abs(got[e] - want[e])));
      EXPECT_LT(worst, 2e-5) << layout_name(layout) << " P=" << P << " T=" << cs.T << " heads " << cs.s.n_head << "/"
                             << cs.s.n_kv;
    }
  }
}

TEST(DistCpAttention, SequenceShorterThanRanksIsAnError) {
  MpiComm& c = *g_comm;
  if (c.size() == 1) GTEST_SKIP() << "needs 2 ranks";
  std::vector<float> x(8), out(8);
  EXPECT_THROW(cp_attention(c, Layout::Striped, 1, {1, 1, 8}, x, x, x, out), ik::Error);
}

int main(int argc, char** argv) { return ik::test::run_tests_on_all_ranks(argc, argv, g_comm, 30); }
