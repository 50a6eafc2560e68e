// SIGINT / SIGTERM during a training run: the handler only records the signal; the loop checks
// stop_requested() after each step, saves a checkpoint and returns, so Ctrl-C never leaves a
// half-written file and the run can be resumed.
#pragma once

namespace wensu::train {

// Installs the handlers for its lifetime (the previous ones come back after) and clears any
// earlier request.
class SignalScope {
 public:
  SignalScope();
  ~SignalScope();
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  struct Saved;
  Saved* saved_;
};

// True once SIGINT or SIGTERM arrived inside a SignalScope.
bool stop_requested();

}  // namespace wensu::train
