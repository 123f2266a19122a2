// Request (the timeout rule shared by every communicator) and LocalComm.
#include "dist/comm.hpp"

#include <algorithm>
#include <thread>

#include "core/error.hpp"

namespace ik::dist {

Request::Request(TestFn test, AbandonFn abandon, double timeout_s, std::string what)
    : test_(std::move(test)), abandon_(std::move(abandon)), timeout_s_(timeout_s), what_(std::move(what)), done_(false) {}

bool Request::test() {
  if (!done_) done_ = test_();
  return done_;
}

void Request::wait() {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(timeout_s_);
  // Spin briefly (messages usually arrive soon), then sleep between polls so that
  // oversubscribed ranks leave the cores to the ranks doing the work.
  for (int polls = 0; !test(); ++polls) {
    if (clock::now() > deadline) {
      if (abandon_) abandon_();
      abandon_ = nullptr;
      fail("{} did not complete within {:g} s (a peer rank is missing, stuck or dead)", what_, timeout_s_);
    }
    if (polls < 200)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 2000 ? 20 : 200));
  }
}

Request LocalComm::iall_gather(std::span<const float> mine, std::span<float> all) {
  IK_CHECK(all.size() == mine.size(), "all_gather: output holds {} floats, expected {}", all.size(), mine.size());
  std::copy(mine.begin(), mine.end(), all.begin());
  return {};
}

Request LocalComm::ibroadcast(std::span<float>, int root) {
  IK_CHECK(root == 0, "broadcast: root {} out of range for size 1", root);
  return {};
}

Request LocalComm::isend(std::span<const float>, int dest, int) { fail("LocalComm: send to rank {} (size is 1)", dest); }
Request LocalComm::irecv(std::span<float>, int src, int) { fail("LocalComm: recv from rank {} (size is 1)", src); }

}  // namespace ik::dist
