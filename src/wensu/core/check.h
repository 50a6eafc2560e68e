// Errors and argument checks. Every failure is a wensu::Error with a message a user can act on.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace wensu {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace wensu

// WENSU_CHECK(cond, "what", value, "...") throws wensu::Error with the concatenated message.
#define WENSU_CHECK(cond, ...)                                       \
  do {                                                               \
    if (!(cond)) throw ::wensu::Error(::wensu::detail::concat(__VA_ARGS__)); \
  } while (0)
