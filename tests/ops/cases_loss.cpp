// PLACEHOLDER: replaced by the loss op family.
#include "ops/harness.h"
namespace wensu::test {
std::vector<OpCase> loss_cases() { return {}; }
}  // namespace wensu::test
