#pragma once
// Comm: the collective and point-to-point operations a distributed engine needs, over
// float buffers. Two implementations: MpiComm (ranks launched by mpirun, or a single
// process of size 1) and LocalComm (size 1, no MPI). Every blocking call is an
// asynchronous call plus Request::wait(), so all of them share one timeout rule: a wait
// that does not complete within timeout_s() throws ik::Error on that rank instead of
// hanging. After a timeout the communicator is unusable (MPI cannot cancel a collective);
// the process should report and exit.
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace ik::dist {

// Handle for an asynchronous operation. A default-constructed Request is already complete.
class Request {
 public:
  using TestFn = std::function<bool()>;      // drives progress, true once complete
  using AbandonFn = std::function<void()>;   // called once on timeout (cancel what can be)
  Request() = default;
  Request(TestFn test, AbandonFn abandon, double timeout_s, std::string what);

  bool test();  // non-blocking: true once the operation has completed
  void wait();  // blocks until complete; throws ik::Error after the timeout
  bool done() const { return done_; }

 private:
  TestFn test_;
  AbandonFn abandon_;
  double timeout_s_ = 0;
  std::string what_;
  bool done_ = true;
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Collectives (every rank must call them in the same order).
  void all_reduce_sum(std::span<float> data) { iall_reduce_sum(data).wait(); }
  void all_gather(std::span<const float> mine, std::span<float> all) { iall_gather(mine, all).wait(); }
  void broadcast(std::span<float> data, int root) { ibroadcast(data, root).wait(); }
  void barrier() { ibarrier().wait(); }
  // Point to point; tag distinguishes concurrent messages between the same pair.
  void send(std::span<const float> data, int dest, int tag = 0) { isend(data, dest, tag).wait(); }
  void recv(std::span<float> data, int src, int tag = 0) { irecv(data, src, tag).wait(); }

  // Asynchronous forms: buffers must stay alive and untouched until the Request completes.
  virtual Request iall_reduce_sum(std::span<float> data) = 0;                     // in place
  virtual Request iall_gather(std::span<const float> mine, std::span<float> all) = 0;  // all = size() * mine, rank order
  virtual Request ibroadcast(std::span<float> data, int root) = 0;
  virtual Request ibarrier() = 0;
  virtual Request isend(std::span<const float> data, int dest, int tag) = 0;
  virtual Request irecv(std::span<float> data, int src, int tag) = 0;

  double timeout_s() const { return timeout_s_; }
  void set_timeout(double seconds) { timeout_s_ = seconds; }

 protected:
  double timeout_s_ = 60.0;
};

// Size-1 communicator with no MPI: collectives are copies, point to point is an error.
class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Request iall_reduce_sum(std::span<float>) override { return {}; }
  Request iall_gather(std::span<const float> mine, std::span<float> all) override;
  Request ibroadcast(std::span<float>, int root) override;
  Request ibarrier() override { return {}; }
  Request isend(std::span<const float>, int dest, int tag) override;
  Request irecv(std::span<float>, int src, int tag) override;
};

// RAII MPI_Init_thread / MPI_Finalize. Works under mpirun and as a plain process
// (a singleton of size 1). Finalizes only if it initialized.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool owns_ = false;
};

// True when this process was started by mpirun (OpenMPI / PMIx environment).
bool launched_by_mpirun();

// Communicator over a private duplicate of MPI_COMM_WORLD (so a broken communicator,
// e.g. after a timeout, leaves others usable). Requires an MpiSession alive.
class MpiComm final : public Comm {
 public:
  MpiComm();
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Request iall_reduce_sum(std::span<float> data) override;
  Request iall_gather(std::span<const float> mine, std::span<float> all) override;
  Request ibroadcast(std::span<float> data, int root) override;
  Request ibarrier() override;
  Request isend(std::span<const float> data, int dest, int tag) override;
  Request irecv(std::span<float> data, int src, int tag) override;

  struct State;  // opaque: the MPI communicator and its broken-after-timeout flag

 private:
  std::shared_ptr<State> state_;
  int rank_ = 0, size_ = 1;
};

}  // namespace ik::dist
