#include "wensu/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace wensu::train {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, double log_every_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(isatty(STDERR_FILENO)),
      log_every_s_(log_every_s), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(int64_t done, const std::string& status) {
  done_ = done;
  status_ = status;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((tty_ && since >= 0.1) || since >= log_every_s_) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  draw(true);
}

void ProgressBar::draw(bool final) {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = el > 0 ? double(done_) / el : 0;
  double eta = rate > 0 ? double(total_ - done_) / rate : 0;
  const int width = 24;
  int fill = total_ > 0 ? int(width * double(done_) / double(total_)) : 0;
  std::string bar(size_t(fill), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %s | %.2f %s/s | %s elapsed | ETA %s | %s%s", tty_ ? "\r\033[K" : "",
               label_.c_str(), bar.c_str(), (long long)done_, (long long)total_, unit_.c_str(), rate, unit_.c_str(),
               format_duration(el).c_str(), final ? "0s" : format_duration(eta).c_str(), status_.c_str(),
               tty_ && !final ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace wensu::train
