#pragma once
// main() for GoogleTest binaries that ctest runs under mpirun: every rank runs every test on the
// world communicator, then the ranks agree on the result, so mpirun's exit status reports a
// failure on any rank.
#include <gtest/gtest.h>

#include <vector>

#include "dist/comm.hpp"

namespace ik::test {

// world: set to the world communicator while the tests run. timeout_s: how long a rank waits
// for its peers before failing instead of hanging.
inline int run_tests_on_all_ranks(int argc, char** argv, dist::MpiComm*& world, double timeout_s) {
  ::testing::InitGoogleTest(&argc, argv);
  dist::MpiSession session;
  int rc = 0;
  {
    dist::MpiComm comm;
    comm.set_timeout(timeout_s);
    world = &comm;
    rc = RUN_ALL_TESTS();
    std::vector<float> failed = {float(rc != 0)};
    comm.all_reduce_sum(failed);
    rc = failed[0] > 0;
    world = nullptr;
  }
  return rc;
}

}  // namespace ik::test
