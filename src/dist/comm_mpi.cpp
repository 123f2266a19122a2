// MpiComm: the Comm interface over OpenMPI non-blocking operations, polled with MPI_Test
// so that a wait can give up after the communicator's timeout.
#include <mpi.h>

#include <climits>
#include <cstdlib>

#include "core/error.hpp"
#include "dist/comm.hpp"

namespace ik::dist {

static void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("{}: {}", what, std::string(msg, len));
}

static int count_of(size_t n, const char* what) {
  IK_CHECK(n <= size_t(INT_MAX), "{}: {} floats exceed the MPI count limit", what, n);
  return int(n);
}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

MpiSession::MpiSession() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  // FUNNELED: only the main thread calls MPI (the kernels poll requests between blocks).
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  owns_ = true;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

struct MpiComm::State {
  MPI_Comm comm = MPI_COMM_NULL;
  bool broken = false;  // set by a timeout: pending operations can never be cancelled
};

MpiComm::MpiComm() : state_(std::make_shared<State>()) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  IK_CHECK(initialized, "MpiComm: MPI is not initialized (create an MpiSession first)");
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &state_->comm), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(state_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(state_->comm, &rank_);
  MPI_Comm_size(state_->comm, &size_);
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // A broken communicator still has operations in flight; freeing it would be erroneous.
  if (!finalized && !state_->broken) MPI_Comm_free(&state_->comm);
}

// Wraps a started MPI request. On timeout, receives are cancelled (their buffers may be
// freed by the caller); sends and collectives cannot be, so the communicator is marked broken.
static Request wrap(std::shared_ptr<MpiComm::State>& state, MPI_Request req, bool cancellable, double timeout_s,
                    std::string what) {
  auto handle = std::make_shared<MPI_Request>(req);
  auto st = state;
  auto test = [handle, what] {
    int flag = 0;
    check_mpi(MPI_Test(handle.get(), &flag, MPI_STATUS_IGNORE), what.c_str());
    return flag != 0;
  };
  auto abandon = [handle, st, cancellable] {
    st->broken = true;
    if (cancellable && *handle != MPI_REQUEST_NULL) {
      MPI_Cancel(handle.get());
      MPI_Request_free(handle.get());
    }
  };
  return Request(test, abandon, timeout_s, std::move(what));
}

#define IK_MPI_START(call, what)                                                                  \
  IK_CHECK(!state_->broken, "{}: communicator unusable after an earlier timeout", what);          \
  MPI_Request req;                                                                                \
  check_mpi(call, what)

Request MpiComm::iall_reduce_sum(std::span<float> data) {
  IK_MPI_START(MPI_Iallreduce(MPI_IN_PLACE, data.data(), count_of(data.size(), "all_reduce"), MPI_FLOAT, MPI_SUM,
                              state_->comm, &req),
               "all_reduce");
  return wrap(state_, req, false, timeout_s_, "all_reduce");
}

Request MpiComm::iall_gather(std::span<const float> mine, std::span<float> all) {
  IK_CHECK(all.size() == mine.size() * size_t(size_), "all_gather: output holds {} floats, expected {}", all.size(),
           mine.size() * size_);
  const int n = count_of(mine.size(), "all_gather");
  IK_MPI_START(MPI_Iallgather(mine.data(), n, MPI_FLOAT, all.data(), n, MPI_FLOAT, state_->comm, &req), "all_gather");
  return wrap(state_, req, false, timeout_s_, "all_gather");
}

Request MpiComm::ibroadcast(std::span<float> data, int root) {
  IK_CHECK(root >= 0 && root < size_, "broadcast: root {} out of range for size {}", root, size_);
  IK_MPI_START(MPI_Ibcast(data.data(), count_of(data.size(), "broadcast"), MPI_FLOAT, root, state_->comm, &req),
               "broadcast");
  return wrap(state_, req, false, timeout_s_, "broadcast");
}

Request MpiComm::ibarrier() {
  IK_MPI_START(MPI_Ibarrier(state_->comm, &req), "barrier");
  return wrap(state_, req, false, timeout_s_, "barrier");
}

Request MpiComm::isend(std::span<const float> data, int dest, int tag) {
  IK_CHECK(dest >= 0 && dest < size_, "send: destination rank {} out of range for size {}", dest, size_);
  IK_MPI_START(MPI_Isend(data.data(), count_of(data.size(), "send"), MPI_FLOAT, dest, tag, state_->comm, &req), "send");
  return wrap(state_, req, false, timeout_s_, fmt::format("send to rank {}", dest));
}

Request MpiComm::irecv(std::span<float> data, int src, int tag) {
  IK_CHECK(src >= 0 && src < size_, "recv: source rank {} out of range for size {}", src, size_);
  IK_MPI_START(MPI_Irecv(data.data(), count_of(data.size(), "recv"), MPI_FLOAT, src, tag, state_->comm, &req), "recv");
  return wrap(state_, req, true, timeout_s_, fmt::format("recv from rank {}", src));
}

}  // namespace ik::dist
