#include "wensu/train/signals.h"

#include <atomic>
#include <csignal>

namespace wensu::train {
namespace {
std::atomic<int> g_signal{0};
extern "C" void on_training_signal(int sig) { g_signal = sig; }
}  // namespace

struct SignalScope::Saved {
  struct sigaction old_int {}, old_term {};
};

SignalScope::SignalScope() : saved_(new Saved) {
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_training_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &saved_->old_int);
  sigaction(SIGTERM, &sa, &saved_->old_term);
}

SignalScope::~SignalScope() {
  sigaction(SIGINT, &saved_->old_int, nullptr);
  sigaction(SIGTERM, &saved_->old_term, nullptr);
  delete saved_;
}

bool stop_requested() { return g_signal != 0; }

}  // namespace wensu::train
