// A progress bar with rate and ETA on stderr. On a terminal it redraws one line; in a log
// file (not a TTY) it prints a plain line every `log_every` seconds instead.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace wensu::train {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "step", double log_every_s = 10.0);
  // Advance to `done` items; `status` is shown after the bar (e.g. "loss 2.31").
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  void draw(bool final);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0;
  bool tty_;
  double log_every_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

}  // namespace wensu::train
