#pragma once
// Progress reporting for long work: a redrawn bar with rate and ETA on a terminal,
// a periodic line (every few seconds) when stderr is a file or pipe.
#include <chrono>
#include <cstdint>
#include <string>

namespace ik {

class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled = true);
  ~Progress();
  void advance(uint64_t n = 1);
  void set(uint64_t done);
  void set_note(std::string note) { note_ = std::move(note); }  // e.g. "loss 2.31"
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  std::string note_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Human-readable seconds: "42s", "3m07s", "1h02m".
std::string format_duration(double seconds);

}  // namespace ik
