// End to end: a small transformer learns the toy task, and a run that is checkpointed and
// resumed produces exactly the losses of an uninterrupted run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "wensu/core/parallel.h"
#include "wensu/train/demo.h"

using namespace wensu;

namespace {
train::DemoOptions tiny(const std::string& out) {
  set_num_threads(1);  // ctest runs suites side by side on 2 cores
  auto o = train::default_demo_options();
  o.task = "copy";
  o.steps = 60;
  o.schedule.total_steps = o.steps;
  o.batch = 8;
  o.length = 16;
  o.out_dir = out;
  o.progress = false;
  return o;
}
std::string temp_dir(const char* name) {
  auto d = std::filesystem::temp_directory_path() / (std::string("wensu-test-") + name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}
}  // namespace

TEST(Training, LossFalls) {
  auto dir = temp_dir("loss");
  auto r = train::run_demo(tiny(dir));
  ASSERT_EQ(r.losses.size(), 60u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += r.losses[i] / 5;
  for (int i = 55; i < 60; ++i) last += r.losses[i] / 5;
  EXPECT_GT(first, std::log(16.0) - 0.2);  // starts at (or above) chance
  EXPECT_LT(last, 0.25 * first) << "loss went from " << first << " to " << last;
  // metrics.jsonl has one line per step.
  std::ifstream m(dir + "/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(m, l);) ++lines;
  EXPECT_EQ(lines, 60);
  std::filesystem::remove_all(dir);
}

TEST(Training, ResumeIsExact) {
  auto full_dir = temp_dir("full"), part_dir = temp_dir("part");
  auto full = train::run_demo(tiny(full_dir));
  auto o = tiny(part_dir);
  o.stop_after = 25;
  auto first = train::run_demo(o);  // steps 1..25, then checkpoint
  ASSERT_EQ(first.losses.size(), 25u);
  o.stop_after = -1;
  o.resume = part_dir + "/checkpoint.h5";
  auto second = train::run_demo(o);  // a fresh process state would be the same: all state is loaded
  ASSERT_EQ(second.first_step, 26);
  ASSERT_EQ(second.losses.size(), 35u);
  for (size_t i = 0; i < 25; ++i) EXPECT_EQ(first.losses[i], full.losses[i]) << "step " << i + 1;
  for (size_t i = 0; i < 35; ++i) EXPECT_EQ(second.losses[i], full.losses[25 + i]) << "step " << 26 + i;
  std::filesystem::remove_all(full_dir);
  std::filesystem::remove_all(part_dir);
}

TEST(Training, ResumeWithDropoutIsExact) {
  auto full_dir = temp_dir("dfull"), part_dir = temp_dir("dpart");
  auto o = tiny(full_dir);
  o.steps = 30;
  o.schedule.total_steps = 30;
  o.model.transformer.dropout = 0.1;
  auto full = train::run_demo(o);
  o.out_dir = part_dir;
  o.stop_after = 12;
  train::run_demo(o);
  o.stop_after = -1;
  o.resume = part_dir + "/checkpoint.h5";
  auto second = train::run_demo(o);
  ASSERT_EQ(second.losses.size(), 18u);
  for (size_t i = 0; i < 18; ++i) EXPECT_EQ(second.losses[i], full.losses[12 + i]) << "step " << 13 + i;
  std::filesystem::remove_all(full_dir);
  std::filesystem::remove_all(part_dir);
}
