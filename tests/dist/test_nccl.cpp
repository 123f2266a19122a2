// NcclComm on GPUs (label gpu), under mpirun -np P with one GPU per rank. Skips itself when
// this machine has fewer GPUs than ranks (or none). Device buffers in, results checked on
// the host against exact sums of small integers.
#include <gtest/gtest.h>

#include <cuda_runtime.h>
#include <numeric>

#include "core/error.hpp"
#include "dist/comm_nccl.hpp"

using namespace ik::dist;

static NcclComm* g_nccl = nullptr;  // made in main() when there are enough GPUs
static int g_rank = 0, g_size = 1;

namespace {

struct DeviceBuffer {
  float* p = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) { EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p); }
  std::span<float> span() { return {p, n}; }
  void put(const std::vector<float>& v) { ASSERT_EQ(cudaMemcpy(p, v.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess); }
  std::vector<float> get() const {
    std::vector<float> v(n);
    EXPECT_EQ(cudaMemcpy(v.data(), p, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }
};

#define NEED_GPUS()                                                                 \
  if (!g_nccl) GTEST_SKIP() << "needs one GPU per rank (" << g_size << " ranks, " \
                            << cuda_device_count() << " GPUs)"

}  // namespace

TEST(NcclComm, AllReduceAllGatherBroadcast) {
  NEED_GPUS();
  NcclComm& c = *g_nccl;
  const int P = c.size(), me = c.rank();
  const size_t n = 1000;  // not a multiple of anything NCCL likes
  DeviceBuffer x(n);
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = float(me + 1) * float(i % 13);
  x.put(h);
  c.all_reduce_sum(x.span());
  const auto sum = x.get();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(sum[i], float(P * (P + 1) / 2) * float(i % 13)) << i;

  DeviceBuffer mine(3), all(3 * P);
  mine.put({float(me), float(10 * me), 7.0f});
  c.all_gather(std::span<const float>(mine.p, 3), all.span());
  const auto g = all.get();
  for (int p = 0; p < P; ++p) {
    EXPECT_EQ(g[3 * p], float(p));
    EXPECT_EQ(g[3 * p + 1], float(10 * p));
    EXPECT_EQ(g[3 * p + 2], 7.0f);
  }

  DeviceBuffer b(4);
  b.put({float(me), 1, 2, 3});
  c.broadcast(b.span(), P - 1);
  EXPECT_EQ(b.get(), (std::vector<float>{float(P - 1), 1, 2, 3}));
  c.barrier();
}

TEST(NcclComm, AsyncAllReduceCompletesThroughWait) {
  NEED_GPUS();
  NcclComm& c = *g_nccl;
  DeviceBuffer a(1 << 20), b(1 << 20);
  a.put(std::vector<float>(a.n, 1.0f));
  b.put(std::vector<float>(b.n, 2.0f));
  Request ra = c.iall_reduce_sum(a.span());  // two in flight, waited in the other order
  Request rb = c.iall_reduce_sum(b.span());
  rb.wait();
  ra.wait();
  EXPECT_TRUE(ra.done() && rb.done());
  EXPECT_EQ(a.get()[12345], float(c.size()));
  EXPECT_EQ(b.get()[a.n - 1], float(2 * c.size()));
}

TEST(NcclComm, PointToPointRing) {
  NEED_GPUS();
  NcclComm& c = *g_nccl;
  if (c.size() == 1) GTEST_SKIP() << "needs 2 ranks";
  const int P = c.size(), me = c.rank();
  DeviceBuffer out(5), in(5);
  out.put(std::vector<float>(5, float(me)));
  Request s = c.isend(std::span<const float>(out.p, 5), (me + 1) % P, 0);
  Request r = c.irecv(in.span(), (me + P - 1) % P, 0);
  s.wait();
  r.wait();
  EXPECT_EQ(in.get(), std::vector<float>(5, float((me + P - 1) % P)));
}

TEST(NcclComm, NvlsIsOff) {
  NEED_GPUS();
  EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  MpiSession session;
  int rc = 0;
  {
    MpiComm world;
    g_rank = world.rank();
    g_size = world.size();
    // Every rank decides alike: NCCL only when every rank has its own GPU.
    std::vector<float> lacking = {float(cuda_device_count() < world.size())};
    world.all_reduce_sum(lacking);
    std::unique_ptr<NcclComm> nccl;
    if (lacking[0] == 0) {
      nccl = std::make_unique<NcclComm>();
      nccl->set_timeout(60);
      g_nccl = nccl.get();
    }
    rc = RUN_ALL_TESTS();
    std::vector<float> failed = {float(rc != 0)};
    world.all_reduce_sum(failed);
    rc = failed[0] > 0;
  }
  return rc;
}
