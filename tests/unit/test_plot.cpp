// Pictures (io/plot.h) and JSON lines (io/jsonl.h): plot_lines and plot_heatmap write real
// PNG / SVG / PDF files of the asked size, fail with a message naming the output for a bad
// extension, an unwritable place or bad data, and never leave a partial file behind;
// moving_average against a plain loop; read_json_lines names the line of malformed input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/io/jsonl.h"
#include "wensu/io/plot.h"

using namespace wensu;
using namespace wensu::io;
using wensu::test::read_text;
namespace fs = std::filesystem;

namespace {

class Plot : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    seed_ = std::random_device{}();
    rng_.seed(seed_);
  }
  // A noisy decaying curve of n points, like a training loss.
  Series curve(const std::string& name, int n) {
    std::normal_distribution<double> noise(0.0, 0.1);
    Series s;
    s.name = name;
    for (int i = 0; i < n; ++i) {
      s.x.push_back(i);
      s.y.push_back(3.0 * std::exp(-i / 40.0) + 0.2 + std::fabs(noise(rng_)));
    }
    return s;
  }
  std::vector<PlotSpec> two_panels() {
    PlotSpec loss;
    loss.title = "training loss";
    loss.xlabel = "step";
    loss.ylabel = "loss";
    loss.series = {curve("train loss", 150), curve("val loss", 150)};
    PlotSpec ppl;
    ppl.title = "perplexity";
    ppl.log_y = true;
    ppl.series = {curve("val ppl", 150)};
    return {loss, ppl};
  }
  uint32_t seed_ = 0;
  std::mt19937_64 rng_;
};

uint32_t big_endian_u32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

// Checks the PNG signature and reads the size from the IHDR chunk, which must come first.
void expect_png(const std::string& file, uint32_t width, uint32_t height) {
  const std::string png = read_text(file);
  ASSERT_GE(png.size(), 33u) << file;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << file;
  EXPECT_EQ(big_endian_u32(png, 8), 13u) << "IHDR length";
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian_u32(png, 16), width);
  EXPECT_EQ(big_endian_u32(png, 20), height);
  EXPECT_NE(png.find("IEND"), std::string::npos) << "the PNG is complete";
}

// PLplot's svg driver writes every character of a <text> as a numeric entity (&#x61;).
std::string decode_entities(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "&#x") == 0) {
      size_t end = s.find(';', i);
      if (end != std::string::npos) {
        out += static_cast<char>(std::stoul(s.substr(i + 3, end - i - 3), nullptr, 16));
        i = end;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

using test::error_of;

}  // namespace

TEST_F(Plot, PngHasTheAskedSize) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  plot_lines(two_panels(), path("loss.png"), 640, 230);
  expect_png(path("loss.png"), 640, 2 * 230);
  EXPECT_EQ(files(), std::vector<std::string>{"loss.png"}) << "no temporary left behind";
}

TEST_F(Plot, SvgKeepsTitlesAndSeriesNamesAsText) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  plot_lines(two_panels(), path("loss.svg"));
  const std::string svg = read_text(path("loss.svg"));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos) << "the SVG is complete";
  const std::string text = decode_entities(svg);
  for (const char* s : {"train loss", "val loss", "training loss", "perplexity", "step"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
}

TEST_F(Plot, PdfByExtension) {
  plot_lines(two_panels(), path("loss.PDF"), 500, 300);
  EXPECT_EQ(read_text(path("loss.PDF")).rfind("%PDF-", 0), 0u);
}

TEST_F(Plot, GapsLogAxesAndEmptyPanelsStillDraw) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  // NaN breaks the line, y <= 0 cannot sit on a log axis, a lone point becomes a dot, a panel
  // with nothing usable says "no data": none of these may make PLplot complain.
  Series s = curve("loss", 60);
  s.y[10] = std::numeric_limits<double>::quiet_NaN();
  s.y[20] = -1.0;
  s.y[30] = 0.0;
  s.y[31] = std::numeric_limits<double>::infinity();
  PlotSpec log_panel;
  log_panel.title = "gaps";
  log_panel.log_y = true;
  log_panel.series = {s, Series{"single", {5.0}, {2.0}}};
  PlotSpec empty;
  empty.title = "nothing";
  empty.series = {Series{"nan", {1.0, 2.0}, {std::nan(""), std::nan("")}}};
  PlotSpec flat;
  flat.title = "constant";
  flat.series = {Series{"c", {3.0, 3.0}, {1.0, 1.0}}};
  plot_lines({log_panel, empty, flat}, path("gaps.png"), 400, 150);
  expect_png(path("gaps.png"), 400, 450);
}

TEST_F(Plot, UnknownExtensionIsAnErrorAndWritesNothing) {
  const std::string msg = error_of([&] { plot_lines(two_panels(), path("loss.jpg")); });
  EXPECT_NE(msg.find(path("loss.jpg")), std::string::npos) << msg;
  EXPECT_NE(msg.find(".png, .svg or .pdf"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { plot_lines(two_panels(), path("loss")); }).find("unknown picture type"), std::string::npos);
  EXPECT_TRUE(files().empty());
}

TEST_F(Plot, UnwritablePlaceIsAnErrorNamingIt) {
  { std::ofstream(path("file")) << "a file, not a folder"; }
  for (const std::string out : {path("missing/dir/loss.png"), path("file/loss.png")}) {
    const std::string msg = error_of([&] { plot_lines(two_panels(), out); });
    EXPECT_NE(msg.find("plot " + out + ": cannot create"), std::string::npos) << msg;
  }
  EXPECT_EQ(files(), std::vector<std::string>{"file"});
}

TEST_F(Plot, FailedPlotLeavesTheOldPictureAlone) {
  { std::ofstream(path("loss.png")) << "old picture"; }
  std::vector<PlotSpec> bad = two_panels();
  bad[1].series[0].y.pop_back();
  const std::string msg = error_of([&] { plot_lines(bad, path("loss.png")); });
  EXPECT_NE(msg.find("149 y values"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { plot_lines({}, path("loss.png")); }).find("no panels"), std::string::npos);
  EXPECT_NE(error_of([&] { plot_lines(two_panels(), path("loss.png"), 10, 10); }).find("100..20000"),
            std::string::npos);
  EXPECT_EQ(read_text(path("loss.png")), "old picture");
  EXPECT_EQ(files(), std::vector<std::string>{"loss.png"});
  // A good plot then replaces it whole.
  plot_lines(two_panels(), path("loss.png"), 300, 200);
  expect_png(path("loss.png"), 300, 400);
}

TEST_F(Plot, HeatmapPngAndSvg) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const int64_t rows = 23, cols = 17;
  std::vector<float> v(rows * cols);
  for (auto& x : v) x = u(rng_);
  plot_heatmap(v, rows, cols, "contacts #1", path("map.png"));
  expect_png(path("map.png"), 760, 640);
  plot_heatmap(std::vector<float>(16, 0.5f), 4, 4, "constant", path("map.svg"));
  EXPECT_NE(decode_entities(read_text(path("map.svg"))).find("constant"), std::string::npos);

  EXPECT_NE(error_of([&] { plot_heatmap(v, rows, cols + 1, "t", path("bad.png")); }).find("needs 414 values, got 391"),
            std::string::npos);
  v[5] = std::nanf("");
  EXPECT_NE(error_of([&] { plot_heatmap(v, rows, cols, "t", path("bad.png")); }).find("row 0, column 5"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(path("bad.png")));
}

TEST_F(Plot, MovingAverageMatchesAPlainLoop) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::normal_distribution<double> n(1.0, 2.0);
  std::vector<double> y(300);
  for (auto& v : y) v = n(rng_);
  for (size_t i = 7; i < y.size(); i += 13) y[i] = std::numeric_limits<double>::quiet_NaN();
  for (int i = 40; i < 50; ++i) y[i] = std::numeric_limits<double>::quiet_NaN();  // a gap longer than the window
  for (int window : {1, 2, 3, 5, 8, 400}) {
    std::vector<double> got = moving_average(y, window);
    ASSERT_EQ(got.size(), y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      double sum = 0;
      int count = 0;
      const int64_t before = window > 1 ? (window - 1) / 2 : 0, after = window > 1 ? window / 2 : 0;
      for (int64_t j = static_cast<int64_t>(i) - before; j <= static_cast<int64_t>(i) + after; ++j)
        if (j >= 0 && j < static_cast<int64_t>(y.size()) && std::isfinite(y[j])) sum += y[j], ++count;
      if (window <= 1) {
        EXPECT_TRUE(std::isnan(y[i]) ? std::isnan(got[i]) : got[i] == y[i]) << i;
      } else if (count == 0) {
        EXPECT_TRUE(std::isnan(got[i])) << "window " << window << " at " << i;
      } else {
        EXPECT_NEAR(got[i], sum / count, 1e-12 * (1 + std::fabs(sum))) << "window " << window << " at " << i;
      }
    }
  }
}

TEST_F(Plot, JsonLinesNameTheLineOfMalformedInput) {
  { std::ofstream(path("m.jsonl")) << "{\"step\": 1, \"loss\": 2.5}\n\n{\"step\": 2}\n{\"step\": 3, \"loss\": 2.1}\n"; }
  JsonLines ok = read_json_lines(path("m.jsonl"));
  ASSERT_EQ(ok.objects.size(), 3u);
  EXPECT_EQ(ok.line_numbers, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(ok.objects[2]["loss"].get<double>(), 2.1);
  EXPECT_FALSE(ok.objects[1].contains("loss"));
  EXPECT_FALSE(ok.truncated_tail);

  { std::ofstream(path("bad.jsonl")) << "{\"step\": 1}\n{\"step\": 2,, }\n{\"step\": 3}\n"; }
  std::string msg = error_of([&] { read_json_lines(path("bad.jsonl")); });
  EXPECT_EQ(msg.rfind(path("bad.jsonl") + ":2: not valid JSON at column", 0), 0u) << msg;

  { std::ofstream(path("array.jsonl")) << "{\"step\": 1}\n[1, 2]\n"; }
  msg = error_of([&] { read_json_lines(path("array.jsonl")); });
  EXPECT_EQ(msg.rfind(path("array.jsonl") + ":2: expected a JSON object", 0), 0u) << msg;

  // A run still writing: the last record is cut short and has no newline yet.
  { std::ofstream(path("live.jsonl")) << "{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3, \"lo"; }
  JsonLines live = read_json_lines(path("live.jsonl"));
  EXPECT_EQ(live.objects.size(), 2u);
  EXPECT_TRUE(live.truncated_tail);

  EXPECT_NE(error_of([&] { read_json_lines(path("none.jsonl")); }).find("cannot open " + path("none.jsonl")),
            std::string::npos);
}
