// The one table of ops. Every op the library exposes is listed here with whether it is
// differentiable; the op test harness (tests/ops/) fails when an op in this table has no
// equivalence case, or a differentiable one has no gradient case.
#pragma once
#include <string>
#include <vector>

namespace wensu::ops {

struct OpInfo {
  std::string name;
  bool differentiable;
  std::string header;  // where its contract lives, for docs and error messages
};

const std::vector<OpInfo>& op_table();

}  // namespace wensu::ops
