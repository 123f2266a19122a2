#include "dist/launch.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "core/error.hpp"

namespace ik::dist {

namespace {
std::string stderr_path(const std::string& id_path, int rank) { return fmt::format("{}.rank{}.err", id_path, rank); }

// The child's last "error: ..." line (what main printed), or "".
std::string child_error(const std::string& id_path, int rank) {
  std::ifstream f(stderr_path(id_path, rank));
  std::string line, last;
  while (std::getline(f, line))
    if (line.rfind("error: ", 0) == 0) last = line.substr(7);
  return last;
}

void remove_files(const LocalRanks& r) {
  std::remove(r.id_path.c_str());
  for (int i = 1; i < r.size; ++i) std::remove(stderr_path(r.id_path, i).c_str());
}
}  // namespace

LocalRanks::~LocalRanks() {
  if (rank != 0 || children.empty()) return;
  for (pid_t c : children) kill(c, SIGTERM);
  for (pid_t c : children) waitpid(c, nullptr, 0);
  remove_files(*this);
}

LocalRanks spawn_local_ranks(int n) {
  IK_CHECK(n >= 1 && n <= 1024, "local ranks: {} processes requested", n);
  LocalRanks r;
  r.size = n;
  static int serial = 0;
  r.id_path = fmt::format("/tmp/inferkit-rendezvous-{}-{}", getpid(), serial++);
  std::remove(r.id_path.c_str());
  std::fflush(nullptr);  // a child must not inherit (and print again) buffered output
  const pid_t parent = getpid();
  for (int i = 1; i < n; ++i) {
    const pid_t pid = fork();
    IK_CHECK(pid >= 0, "local ranks: fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
      r.rank = i;
      r.children.clear();
      std::freopen(stderr_path(r.id_path, i).c_str(), "w", stderr);
      return r;
    }
    r.children.push_back(pid);
  }
  return r;
}

void join_local_ranks(LocalRanks& ranks) {
  if (ranks.rank != 0) return;
  std::string failed;
  for (size_t i = 0; i < ranks.children.size(); ++i) {
    int status = 0;
    waitpid(ranks.children[i], &status, 0);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok || !failed.empty()) continue;
    const int r = int(i) + 1;
    const std::string why = child_error(ranks.id_path, r);
    failed = !why.empty()        ? fmt::format("rank {}: {}", r, why)
             : WIFSIGNALED(status) ? fmt::format("rank {} was killed by signal {}", r, WTERMSIG(status))
                                   : fmt::format("rank {} exited with status {}", r, WEXITSTATUS(status));
  }
  ranks.children.clear();
  remove_files(ranks);
  IK_CHECK(failed.empty(), "{}", failed);
}

void publish_id(const LocalRanks& ranks, const void* bytes, size_t n) {
  const std::string tmp = ranks.id_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(static_cast<const char*>(bytes), std::streamsize(n));
    IK_CHECK(f.good(), "local ranks: cannot write {}", tmp);
  }
  IK_CHECK(std::rename(tmp.c_str(), ranks.id_path.c_str()) == 0, "local ranks: cannot publish {}", ranks.id_path);
}

void fetch_id(const LocalRanks& ranks, void* bytes, size_t n, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    std::ifstream f(ranks.id_path, std::ios::binary);
    if (f && f.read(static_cast<char*>(bytes), std::streamsize(n)) && size_t(f.gcount()) == n) return;
    IK_CHECK(std::chrono::steady_clock::now() < deadline, "rank {}: rank 0 did not publish {} within {:g} s", ranks.rank,
             ranks.id_path, timeout_s);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace ik::dist
