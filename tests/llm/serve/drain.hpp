#pragma once
// Shared by the scheduler tests: step a scheduler until its jobs have finished.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "llm/serve/scheduler.hpp"

// Steps until every job has finished; returns the text each streamed.
inline std::vector<std::string> drain(ik::llm::serve::Scheduler& sched,
                                      const std::vector<std::shared_ptr<ik::llm::serve::Job>>& jobs) {
  std::vector<std::string> text(jobs.size());
  for (int guard = 0; guard < 100000; ++guard) {
    bool all = true;
    for (size_t i = 0; i < jobs.size(); ++i) all &= jobs[i]->wait(std::chrono::milliseconds(0), text[i]);
    if (all) return text;
    sched.step();
  }
  ADD_FAILURE() << "jobs did not finish";
  return text;
}
