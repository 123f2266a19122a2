#include "dist/comm_nccl.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <vector>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace ik::dist {

#define IK_CUDA(call)                                                                              \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) fail("{} failed: {}", #call, cudaGetErrorString(e_));                   \
  } while (0)
#define IK_NCCL(call)                                                                              \
  do {                                                                                             \
    ncclResult_t r_ = (call);                                                                      \
    if (r_ != ncclSuccess) fail("{} failed: {}", #call, ncclGetErrorString(r_));                   \
  } while (0)

// Point-to-point operations posted but not yet launched: NCCL needs a matching send and
// receive in one group (ncclGroupStart/End), or two ranks that both send first deadlock on
// one stream. They are launched together at the first test/wait or the next collective.
struct P2pGroup {
  std::vector<std::function<ncclResult_t(ncclComm_t, cudaStream_t)>> ops;
  cudaEvent_t done = nullptr;  // recorded after the group once launched
  bool launched = false;
  ~P2pGroup() {
    if (done) cudaEventDestroy(done);
  }
};

struct NcclComm::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaStream_t compute = nullptr;  // operations wait for the work already on it
  float* scalar = nullptr;  // device float for barriers
  bool broken = false;      // set after a timeout: the communicator was aborted
  double timeout_s = 60;
  std::shared_ptr<P2pGroup> open;  // posted point-to-point operations not launched yet
  void launch_p2p();
  void require_usable() const {
    IK_CHECK(!broken, "the NCCL communicator is unusable after an earlier timeout");
  }
  ~State() {
    if (comm) broken ? ncclCommAbort(comm) : ncclCommDestroy(comm);
    if (scalar) cudaFree(scalar);
    if (stream) cudaStreamDestroy(stream);
  }
};

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

NcclComm::NcclComm(int device) : state_(std::make_shared<State>()) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  IK_CHECK(initialized, "NcclComm needs MPI (create an MpiSession first)");
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  open_device(device, local ? std::atoi(local) : rank_);
  ncclUniqueId id{};
  if (rank_ == 0) IK_NCCL(ncclGetUniqueId(&id));
  IK_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD) == MPI_SUCCESS, "NcclComm: broadcasting the id failed");
  init_comm(&id);
}

NcclComm::NcclComm(const LocalRanks& ranks, int device) : state_(std::make_shared<State>()) {
  rank_ = ranks.rank;
  size_ = ranks.size;
  open_device(device, rank_);
  ncclUniqueId id{};
  if (rank_ == 0) {
    IK_NCCL(ncclGetUniqueId(&id));
    publish_id(ranks, &id, sizeof(id));
  } else {
    fetch_id(ranks, &id, sizeof(id), timeout_s_);
  }
  init_comm(&id);
}

// device < 0: the GPU of this process's local rank, modulo the visible count.
void NcclComm::open_device(int device, int local_rank) {
  const int n_dev = cuda_device_count();
  IK_CHECK(n_dev > 0, "NcclComm: no CUDA device on rank {}", rank_);
  if (device < 0) device = local_rank % n_dev;
  IK_CHECK(device < n_dev, "NcclComm: device {} does not exist ({} visible)", device, n_dev);
  device_ = device;
  IK_CUDA(cudaSetDevice(device_));
  IK_CUDA(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking));
  IK_CUDA(cudaMalloc(&state_->scalar, sizeof(float)));
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // NVLink multicast off (must precede init)
}

void NcclComm::init_comm(const void* unique_id) {
  ncclUniqueId id{};
  std::memcpy(&id, unique_id, sizeof(id));
  // Non-blocking init so that a missing peer is a timeout, not a hang.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&state_->comm, size_, id, rank_, &config);
  IK_CHECK(r == ncclSuccess || r == ncclInProgress, "ncclCommInitRank failed: {}", ncclGetErrorString(r));
  auto st = state_;
  Request init(
      [st] {
        ncclResult_t s = ncclSuccess;
        ncclCommGetAsyncError(st->comm, &s);
        IK_CHECK(s == ncclSuccess || s == ncclInProgress, "NCCL init failed: {}", ncclGetErrorString(s));
        return s == ncclSuccess;
      },
      [st] { st->broken = true; }, timeout_s_, "NCCL communicator init");
  init.wait();
}

NcclComm::~NcclComm() = default;

void* NcclComm::stream() const { return state_->stream; }
void NcclComm::set_compute_stream(void* stream) { state_->compute = static_cast<cudaStream_t>(stream); }

// After an enqueue on the non-blocking communicator: the host-side launch may still be in
// progress, and must be finished before an event is recorded behind it.
static void finish_enqueue(ncclComm_t comm, ncclResult_t r, const char* what, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (r == ncclInProgress) {
    IK_CHECK(std::chrono::steady_clock::now() < deadline, "{} could not be enqueued within {:g} s", what, timeout_s);
    ncclCommGetAsyncError(comm, &r);
  }
  IK_CHECK(r == ncclSuccess, "{} failed: {}", what, ncclGetErrorString(r));
}

// The communicator's stream waits for the work already enqueued on the compute stream.
static void follow_compute(cudaStream_t compute, cudaStream_t stream) {
  cudaEvent_t ready = nullptr;
  IK_CUDA(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  IK_CUDA(cudaEventRecord(ready, compute));
  IK_CUDA(cudaStreamWaitEvent(stream, ready, 0));
  IK_CUDA(cudaEventDestroy(ready));
}

void NcclComm::State::launch_p2p() {
  if (!open) return;
  auto g = std::move(open);
  open = nullptr;
  follow_compute(compute, stream);
  IK_NCCL(ncclGroupStart());
  for (auto& op : g->ops) {
    const ncclResult_t r = op(comm, stream);
    IK_CHECK(r == ncclSuccess || r == ncclInProgress, "send/recv failed: {}", ncclGetErrorString(r));
  }
  finish_enqueue(comm, ncclGroupEnd(), "send/recv group", timeout_s);
  IK_CUDA(cudaEventCreateWithFlags(&g->done, cudaEventDisableTiming));
  IK_CUDA(cudaEventRecord(g->done, stream));
  g->launched = true;
}

// A request that completes when `done` (an event, set once launched) has passed.
static Request event_request(std::shared_ptr<NcclComm::State> st, std::shared_ptr<P2pGroup> g, const char* what);

// Enqueue after the compute stream's work, record a completion event, poll it in test().
template <typename Enqueue>
Request NcclComm::launch(const char* what, Enqueue enqueue) {
  state_->require_usable();
  auto st = state_;
  st->timeout_s = timeout_s_;
  IK_CUDA(cudaSetDevice(device_));
  st->launch_p2p();  // posted point-to-point operations go first, in posting order
  follow_compute(st->compute, st->stream);
  finish_enqueue(st->comm, enqueue(st->comm, st->stream), what, timeout_s_);
  auto g = std::make_shared<P2pGroup>();
  IK_CUDA(cudaEventCreateWithFlags(&g->done, cudaEventDisableTiming));
  IK_CUDA(cudaEventRecord(g->done, st->stream));
  g->launched = true;
  return event_request(st, g, what);
}

// Point to point: posted into the open group, launched at the first test/wait or collective.
template <typename Op>
Request NcclComm::post_p2p(const char* what, Op op) {
  state_->require_usable();
  state_->timeout_s = timeout_s_;
  if (!state_->open) state_->open = std::make_shared<P2pGroup>();
  state_->open->ops.push_back(std::move(op));
  return event_request(state_, state_->open, what);
}

static Request event_request(std::shared_ptr<NcclComm::State> st, std::shared_ptr<P2pGroup> g, const char* what) {
  auto finished = std::make_shared<bool>(false);
  auto test = [st, g, finished, what = std::string(what)]() {
    if (*finished) return true;
    if (!g->launched) st->launch_p2p();
    const cudaEvent_t done = g->done;
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(st->comm, &async);
    IK_CHECK(async == ncclSuccess || async == ncclInProgress, "{} failed: {}", what, ncclGetErrorString(async));
    const cudaError_t e = cudaEventQuery(done);
    if (e == cudaErrorNotReady) return false;
    IK_CHECK(e == cudaSuccess, "{} failed: {}", what, cudaGetErrorString(e));
    *finished = true;
    return true;
  };
  return Request(test, [st] { st->broken = true; }, st->timeout_s, what);
}

Request NcclComm::iall_reduce_sum(std::span<float> data) {
  return launch("all_reduce", [&](ncclComm_t c, cudaStream_t s) {
    return ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, c, s);
  });
}

Request NcclComm::iall_gather(std::span<const float> mine, std::span<float> all) {
  IK_CHECK(all.size() == mine.size() * size_t(size_), "all_gather: output holds {} floats, expected {}", all.size(),
           mine.size() * size_t(size_));
  return launch("all_gather", [&](ncclComm_t c, cudaStream_t s) {
    return ncclAllGather(mine.data(), all.data(), mine.size(), ncclFloat, c, s);
  });
}

Request NcclComm::ibroadcast(std::span<float> data, int root) {
  IK_CHECK(root >= 0 && root < size_, "broadcast: root {} outside [0, {})", root, size_);
  return launch("broadcast", [&](ncclComm_t c, cudaStream_t s) {
    return ncclBroadcast(data.data(), data.data(), data.size(), ncclFloat, root, c, s);
  });
}

Request NcclComm::ibarrier() {
  float* x = state_->scalar;
  return launch("barrier", [x](ncclComm_t c, cudaStream_t s) { return ncclAllReduce(x, x, 1, ncclFloat, ncclSum, c, s); });
}

Request NcclComm::isend(std::span<const float> data, int dest, int /*tag*/) {
  IK_CHECK(dest >= 0 && dest < size_ && dest != rank_, "send: bad destination rank {}", dest);
  return post_p2p("send", [data, dest](ncclComm_t c, cudaStream_t s) {
    return ncclSend(data.data(), data.size(), ncclFloat, dest, c, s);
  });
}

Request NcclComm::irecv(std::span<float> data, int src, int /*tag*/) {
  IK_CHECK(src >= 0 && src < size_ && src != rank_, "recv: bad source rank {}", src);
  return post_p2p("recv", [data, src](ncclComm_t c, cudaStream_t s) {
    return ncclRecv(data.data(), data.size(), ncclFloat, src, c, s);
  });
}

// ---- device-ordered operations (CUDA graphs) -----------------------------------------------

void NcclComm::all_reduce_sum_on(float* data, size_t n, void* stream) {
  state_->require_usable();
  finish_enqueue(state_->comm, ncclAllReduce(data, data, n, ncclFloat, ncclSum, state_->comm, cudaStream_t(stream)),
                 "all_reduce", timeout_s_);
}

void NcclComm::all_gather_on(const float* mine, float* all, size_t n, void* stream) {
  state_->require_usable();
  finish_enqueue(state_->comm, ncclAllGather(mine, all, n, ncclFloat, state_->comm, cudaStream_t(stream)), "all_gather",
                 timeout_s_);
}

void NcclComm::send_recv_on(const void* send, int dst, void* recv, int src, size_t bytes, void* stream) {
  state_->require_usable();
  IK_CHECK(dst >= 0 && dst < size_ && src >= 0 && src < size_, "send_recv: bad ranks {} / {}", dst, src);
  const auto s = cudaStream_t(stream);
  IK_NCCL(ncclGroupStart());
  ncclResult_t r = ncclSend(send, bytes, ncclUint8, dst, state_->comm, s);
  IK_CHECK(r == ncclSuccess || r == ncclInProgress, "send failed: {}", ncclGetErrorString(r));
  r = ncclRecv(recv, bytes, ncclUint8, src, state_->comm, s);
  IK_CHECK(r == ncclSuccess || r == ncclInProgress, "recv failed: {}", ncclGetErrorString(r));
  finish_enqueue(state_->comm, ncclGroupEnd(), "send/recv", timeout_s_);
}

}  // namespace ik::dist
