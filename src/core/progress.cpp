#include "core/progress.hpp"

#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

namespace ik {

std::string format_duration(double s) {
  if (s < 0 || s != s) return "?";
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", int(s) / 60, int(s) % 60);
  return fmt::format("{}h{:02}m", int(s) / 3600, (int(s) % 3600) / 60);
}

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(isatty(STDERR_FILENO)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(uint64_t n) { set(done_ + n); }

void Progress::set(uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.1 : 5.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double frac = total_ ? double(done_) / double(total_) : 1.0;
  double eta = frac > 0 ? elapsed * (1 - frac) / frac : -1;
  std::string tail = final ? fmt::format("done in {}", format_duration(elapsed))
                           : fmt::format("ETA {}", format_duration(eta));
  if (!note_.empty()) tail += "  " + note_;
  if (tty_) {
    const int width = 30;
    int fill = int(frac * width + 0.5);
    fmt::print(stderr, "\r{} [{}{}] {}/{} {}\033[K", label_, std::string(fill, '#'),
               std::string(width - fill, '.'), done_, total_, tail);
    if (final) fmt::print(stderr, "\n");
  } else {
    fmt::print(stderr, "{}: {}/{} ({:.0f}%) {}\n", label_, done_, total_, 100 * frac, tail);
  }
  std::fflush(stderr);
}

}  // namespace ik
