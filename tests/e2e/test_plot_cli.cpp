// `wensu plot` as a user meets it: a metrics file (lines may lack keys) becomes a PNG; the
// demo's own metrics.jsonl plots; a malformed line fails with one message naming file and line;
// --keys with a key the file lacks names the keys it has.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "test_support.h"

using wensu::test::read_text;
using wensu::test::run_wensu;
namespace fs = std::filesystem;

namespace {

class PlotCli : public wensu::test::CliTest {
 protected:

  // A run's log: loss every step, a validation line (no loss, no lr) every 10 steps.
  void write_metrics(const std::string& file, int steps) {
    std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<double> u(0.0, 0.2);
    std::ofstream f(file);
    for (int s = 1; s <= steps; ++s) {
      f << "{\"step\": " << s << ", \"loss\": " << 3.0 / std::sqrt(s) + u(rng) << ", \"lr\": " << 1e-3 * s / steps
        << ", \"tokens\": " << 512 * s << ", \"elapsed_s\": " << 0.1 * s + u(rng) * 0.01;
      f << "}\n";
      if (s % 10 == 0) f << "{\"step\": " << s << ", \"val_loss\": " << 2.5 / std::sqrt(s) + u(rng) << "}\n";
    }
  }
};

bool is_png(const std::string& file) { return read_text(file).rfind("\x89PNG\r\n\x1a\n", 0) == 0; }

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_F(PlotCli, MetricsBecomeAPng) {
  write_metrics(path("metrics.jsonl"), 80);
  ASSERT_EQ(run("plot '" + path("metrics.jsonl") + "'"), 0) << err();
  EXPECT_TRUE(is_png(path("loss.png"))) << "default output: loss.png next to the metrics";
  EXPECT_NE(out().find("validation perplexity"), std::string::npos) << out();
  EXPECT_NE(out().find("throughput"), std::string::npos) << out();

  ASSERT_EQ(run("plot '" + path("metrics.jsonl") + "' -o '" + path("c.svg") + "' --x tokens --keys loss,lr --smooth 4"),
            0)
      << err();
  EXPECT_NE(read_text(path("c.svg")).find("<svg"), std::string::npos);
  EXPECT_NE(out().find("2 panels"), std::string::npos) << out();
}

TEST_F(PlotCli, DemoMetricsPlot) {
  ASSERT_EQ(run("demo --steps 3 --batch 2 --length 8 --threads 1 -o '" + path("run") + "'"), 0) << err();
  ASSERT_EQ(run("plot '" + path("run/metrics.jsonl") + "' -o '" + path("run/curves.png") + "'"), 0) << err();
  EXPECT_TRUE(is_png(path("run/curves.png")));
  EXPECT_NE(out().find("training loss"), std::string::npos) << out();
}

TEST_F(PlotCli, MalformedLineIsAnErrorNamingIt) {
  { std::ofstream(path("m.jsonl")) << "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": }\n{\"step\": 3, \"loss\": 1}\n"; }
  EXPECT_EQ(run("plot '" + path("m.jsonl") + "'"), 1);
  EXPECT_EQ(lines(err()), 1) << err();
  EXPECT_NE(err().find(path("m.jsonl") + ":2: not valid JSON"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("loss.png")));

  { std::ofstream(path("s.jsonl")) << "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": \"high\"}\n"; }
  EXPECT_EQ(run("plot '" + path("s.jsonl") + "'"), 1);
  EXPECT_NE(err().find(path("s.jsonl") + ":2: 'loss' is a JSON string"), std::string::npos) << err();
}

TEST_F(PlotCli, MissingKeysAreNamed) {
  write_metrics(path("metrics.jsonl"), 5);
  EXPECT_EQ(run("plot '" + path("metrics.jsonl") + "' --keys val_ppl"), 1);
  EXPECT_NE(err().find("no numbers for 'val_ppl'"), std::string::npos) << err();
  EXPECT_NE(err().find("loss, lr, step, tokens"), std::string::npos) << "lists the keys it has: " << err();
  EXPECT_EQ(run("plot '" + path("metrics.jsonl") + "' --x epoch"), 1);
  EXPECT_NE(err().find("x axis 'epoch'"), std::string::npos) << err();
  EXPECT_EQ(run("plot '" + path("metrics.jsonl") + "' -o '" + path("c.gif") + "'"), 1);
  EXPECT_NE(err().find(".png, .svg or .pdf"), std::string::npos) << err();
  EXPECT_EQ(run("plot --help"), 0);
  EXPECT_NE(out().find("usage: wensu plot"), std::string::npos);
}
