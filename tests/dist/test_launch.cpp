// spawn_local_ranks: forked ranks meet through the published rendezvous bytes, and a rank that
// fails is reported by join_local_ranks.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "core/error.hpp"
#include "dist/launch.hpp"

using namespace ik::dist;

TEST(LocalRanks, RanksMeetThroughThePublishedBytes) {
  LocalRanks r = spawn_local_ranks(3);
  const char id[16] = "rendezvous-0123";
  if (r.rank != 0) {
    char got[16] = {};
    fetch_id(r, got, sizeof(got), 10.0);
    _exit(std::memcmp(got, id, sizeof(id)) == 0 && r.size == 3 ? 0 : 1);  // leave gtest alone in children
  }
  EXPECT_EQ(r.children.size(), 2u);
  publish_id(r, id, sizeof(id));
  EXPECT_NO_THROW(join_local_ranks(r));
}

TEST(LocalRanks, AFailingRankIsNamed) {
  LocalRanks r = spawn_local_ranks(2);
  if (r.rank == 1) _exit(3);
  try {
    join_local_ranks(r);
    FAIL() << "no error";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 exited with status 3"), std::string::npos) << e.what();
  }
}

TEST(LocalRanks, AFailingRanksErrorMessageIsReported) {
  LocalRanks r = spawn_local_ranks(2);
  if (r.rank == 1) {
    std::fprintf(stderr, "some progress line\nerror: the GPU caught fire\n");
    std::fflush(stderr);
    _exit(1);
  }
  try {
    join_local_ranks(r);
    FAIL() << "no error";
  } catch (const ik::Error& e) {
    EXPECT_EQ(std::string(e.what()), "rank 1: the GPU caught fire");
  }
}

TEST(LocalRanks, LeavingWithoutJoinStopsTheChildren) {
  pid_t child = 0;
  {
    LocalRanks r = spawn_local_ranks(2);
    if (r.rank == 1) {
      pause();  // would wait forever
      _exit(0);
    }
    child = r.children.at(0);
  }  // rank 0 leaves (as on an error): the child is stopped and reaped
  EXPECT_EQ(kill(child, 0), -1);  // no such process any more
}

TEST(LocalRanks, AMissingPublisherTimesOut) {
  LocalRanks r;
  r.rank = 1, r.size = 2, r.id_path = "/tmp/inferkit-rendezvous-never-published";
  char got[4];
  EXPECT_THROW(fetch_id(r, got, sizeof(got), 0.1), ik::Error);
}
