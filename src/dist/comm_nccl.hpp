#pragma once
// NcclComm: the Comm interface over NCCL, one process per GPU. Every span is a DEVICE buffer
// (float*, cudaMalloc'ed on this rank's GPU). Compiled only when CUDA and NCCL are found
// (IK_HAVE_NCCL). The ranks are started by mpirun (MPI carries the NCCL unique id) or by
// spawn_local_ranks (dist/launch.hpp: forked processes, the id passed through a file).
//
// Ordering: an operation is enqueued on the communicator's own stream after everything already
// enqueued on the compute stream (an event), so a kernel that produced the data is finished
// first while later kernels keep running: that is what lets an all-reduce overlap the next
// module (Ladder Residual). Request::test() polls an event recorded after the operation, and
// a wait that exceeds timeout_s() aborts the NCCL communicator and throws ik::Error.
// NVLink SHARP / multicast (NVLS) is switched off (NCCL_NVLS_ENABLE=0) before init.
// Point to point: NCCL has no tags; messages between one pair arrive in the order sent.
// isend/irecv are posted and launched together as one NCCL group at the first test()/wait()
// on any of them or at the next collective (a lone send would wait for its receive forever).
#include <memory>

#include "dist/comm.hpp"
#include "dist/launch.hpp"

namespace ik::dist {

class NcclComm final : public Comm {
 public:
  // Collective over MPI_COMM_WORLD (an MpiSession must be alive). device < 0: the local rank
  // (OMPI_COMM_WORLD_LOCAL_RANK) modulo the visible GPU count.
  explicit NcclComm(int device = -1);
  // Over the processes of spawn_local_ranks (no MPI). device < 0: the rank's own GPU.
  explicit NcclComm(const LocalRanks& ranks, int device = -1);
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const { return device_; }
  // The cudaStream_t whose work every operation waits for (default: the legacy stream 0).
  void set_compute_stream(void* stream);
  void* stream() const;  // the communicator's own cudaStream_t

  Request iall_reduce_sum(std::span<float> data) override;
  Request iall_gather(std::span<const float> mine, std::span<float> all) override;
  Request ibroadcast(std::span<float> data, int root) override;
  Request ibarrier() override;
  Request isend(std::span<const float> data, int dest, int tag) override;
  Request irecv(std::span<float> data, int src, int tag) override;

  // Device-ordered forms for CUDA graphs: enqueued on `stream` (a cudaStream_t) itself, with no
  // host-side completion; the caller orders them against other work with events.
  void all_reduce_sum_on(float* data, size_t n, void* stream);
  void all_gather_on(const float* mine, float* all, size_t n, void* stream);  // all: size() * n
  // bytes to rank dst and from rank src in one NCCL group (a ring step: no deadlock).
  void send_recv_on(const void* send, int dst, void* recv, int src, size_t bytes, void* stream);

  struct State;  // opaque: ncclComm_t, the stream, a device scalar for barriers

 private:
  void open_device(int device, int local_rank);
  void init_comm(const void* unique_id);
  template <typename Enqueue>
  Request launch(const char* what, Enqueue enqueue);
  template <typename Op>
  Request post_p2p(const char* what, Op op);
  std::shared_ptr<State> state_;
  int rank_ = 0, size_ = 1, device_ = 0;
};

// Number of CUDA devices visible to this process (0 when none or no driver).
int cuda_device_count();

}  // namespace ik::dist
