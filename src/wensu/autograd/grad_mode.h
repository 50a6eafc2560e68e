// Whether ops record history. Off inside NoGradGuard scopes (evaluation, optimizer steps,
// backward rules themselves).
#pragma once

namespace wensu::autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace wensu::autograd

namespace wensu {
using autograd::NoGradGuard;
}
