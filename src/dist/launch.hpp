#pragma once
// Processes on one machine without mpirun: spawn_local_ranks forks n - 1 copies of this process
// (before any CUDA call, so each child makes its own CUDA context) and tells each its rank; one
// process drives one GPU. The ranks exchange the few bytes NCCL needs to meet (its unique id)
// through a file that rank 0 publishes.
#include <string>
#include <sys/types.h>
#include <vector>

namespace ik::dist {

struct LocalRanks {
  int rank = 0, size = 1;
  std::string id_path;          // where rank 0 publishes the rendezvous bytes
  std::vector<pid_t> children;  // in rank 0: the other ranks' processes
  LocalRanks() = default;
  LocalRanks(LocalRanks&&) = default;
  LocalRanks& operator=(LocalRanks&&) = default;
  LocalRanks(const LocalRanks&) = delete;
  // Rank 0 leaving without join_local_ranks (an error): stops and reaps the children.
  ~LocalRanks();
};

// Forks n - 1 children (n >= 1). Returns in every process with its own rank; rank 0 is the
// caller. A child dies with its parent, and its stderr goes to a file that join_local_ranks
// reads, so an error shows once, from rank 0, naming the rank. Call before any CUDA call and any
// OpenMP parallel region (neither the CUDA context nor OpenMP's thread pool survives a fork).
LocalRanks spawn_local_ranks(int n);
// In rank 0: waits for every child; throws ik::Error naming the first that failed and its
// error message. In a child: nothing (its exit status is its process's).
void join_local_ranks(LocalRanks& ranks);

// Rendezvous bytes (e.g. an NCCL unique id): rank 0 publishes, the others wait up to timeout_s.
void publish_id(const LocalRanks& ranks, const void* bytes, size_t n);
void fetch_id(const LocalRanks& ranks, void* bytes, size_t n, double timeout_s);

}  // namespace ik::dist
