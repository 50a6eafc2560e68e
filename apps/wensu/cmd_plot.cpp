// wensu plot: training curves from a run's metrics.jsonl as a picture (PNG, SVG or PDF). The
// file is read by wensu/io/jsonl.h and drawn by wensu/io/plot.h; this file picks the panels.
#include <boost/algorithm/string/split.hpp>
#include <algorithm>
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/io/jsonl.h"
#include "wensu/io/plot.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

// The metrics as read, with what messages need to point at a line.
struct Metrics {
  std::string path;
  io::JsonLines lines;
};

// The number under `key` in record i: NaN when the key is missing or null (JSON has no NaN;
// writers emit null for it). Any other non-number is an error naming the line.
double number_at(const Metrics& m, size_t i, const std::string& key) {
  const nlohmann::json& obj = m.lines.objects[i];
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nan("");
  WENSU_CHECK(it->is_number(), m.path, ":", m.lines.line_numbers[i], ": '", key, "' is a JSON ", it->type_name(),
              ", expected a number");
  return it->get<double>();
}

// (x, key) pairs from every record that has numbers for both. Records without the key are
// skipped rather than breaking the line: validation lines, for one, carry no training loss.
io::Series column(const Metrics& m, const std::string& xkey, const std::string& key) {
  io::Series s;
  s.name = key;
  for (size_t i = 0; i < m.lines.objects.size(); ++i) {
    const double x = number_at(m, i, xkey), y = number_at(m, i, key);
    if (std::isnan(x) || std::isnan(y)) continue;
    s.x.push_back(x);
    s.y.push_back(y);
  }
  return s;
}

bool has_values(const io::Series& s) {
  for (double v : s.y)
    if (std::isfinite(v)) return true;
  return false;
}

std::string keys_present(const Metrics& m) {
  std::vector<std::string> keys;
  for (auto& obj : m.lines.objects)
    for (auto& [k, v] : obj.items())
      if (v.is_number() && std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::string out;
  for (auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out.empty() ? "(none)" : out;
}

// The raw curve faint and thin, its (centred) moving average on top in the same colour, so the
// trend shows without hiding the noise.
void add_smoothed(io::PlotSpec& p, io::Series raw, int window, int color) {
  raw.color = color;
  if (window <= 1) {
    p.series.push_back(std::move(raw));
    return;
  }
  io::Series avg = raw;
  avg.name = raw.name + ", mean of " + std::to_string(window);
  avg.y = io::moving_average(raw.y, window);
  avg.line_width = 2.0;
  raw.alpha = 0.3;
  raw.line_width = 1.0;
  p.series.push_back(std::move(raw));
  p.series.push_back(std::move(avg));
}

// Tokens per second between consecutive records that have both `tokens` and `elapsed_s`
// (a run that logs only the cumulative counts), placed at the later record's x.
io::Series derived_throughput(const Metrics& m, const std::string& xkey) {
  io::Series s;
  s.name = "tokens/s";
  double prev_tokens = std::nan(""), prev_time = std::nan("");
  for (size_t i = 0; i < m.lines.objects.size(); ++i) {
    const double x = number_at(m, i, xkey), tok = number_at(m, i, "tokens"), t = number_at(m, i, "elapsed_s");
    if (std::isnan(tok) || std::isnan(t)) continue;
    if (!std::isnan(x) && t > prev_time) {
      s.x.push_back(x);
      s.y.push_back((tok - prev_tokens) / (t - prev_time));
    }
    prev_tokens = tok, prev_time = t;
  }
  return s;
}

std::vector<io::PlotSpec> default_panels(const Metrics& m, const std::string& xkey, int smooth) {
  std::vector<io::PlotSpec> panels;
  auto panel = [&](const std::string& title, const std::string& ylabel, bool log_y) {
    io::PlotSpec p;
    p.title = title, p.xlabel = xkey, p.ylabel = ylabel, p.log_y = log_y;
    return p;
  };

  io::PlotSpec loss = panel("training loss", "loss", false);
  if (io::Series s = column(m, xkey, "loss"); has_values(s)) add_smoothed(loss, std::move(s), smooth, 0);
  if (io::Series s = column(m, xkey, "val_loss"); has_values(s)) {
    s.name = "validation loss";
    s.color = 1;
    s.line_width = 2.0;
    loss.series.push_back(std::move(s));
  }
  if (!loss.series.empty()) panels.push_back(std::move(loss));

  // Image-text runs (wensu mm train) validate by retrieval: recall@1 and @5 both ways.
  io::PlotSpec recall = panel("validation recall", "recall", false);
  int colour = 0;
  for (const auto& [key, name] : {std::pair{"val_i2t_r1", "image -> text R@1"}, std::pair{"val_t2i_r1", "text -> image R@1"},
                                  std::pair{"val_i2t_r5", "image -> text R@5"}, std::pair{"val_t2i_r5", "text -> image R@5"}}) {
    io::Series s = column(m, xkey, key);
    if (!has_values(s)) continue;
    s.name = name;
    s.color = colour++;
    s.line_width = 2.0;
    recall.series.push_back(std::move(s));
  }
  if (!recall.series.empty()) {
    panels.push_back(std::move(recall));
  } else {
    // Perplexity as logged, or exp(validation loss) from runs that log only the loss.
    io::Series ppl = column(m, xkey, "val_ppl");
    if (!has_values(ppl)) {
      ppl = column(m, xkey, "val_loss");
      for (double& v : ppl.y) v = std::exp(v);
    }
    if (has_values(ppl)) {
      io::PlotSpec p = panel("validation perplexity", "perplexity", true);
      ppl.name = "validation perplexity";
      ppl.line_width = 2.0;
      p.series.push_back(std::move(ppl));
      panels.push_back(std::move(p));
    }
  }

  struct Plain {
    const char* key;
    const char* title;
    const char* ylabel;
    bool log_y;
  };
  for (const Plain& k : {Plain{"lr", "learning rate", "learning rate", false},
                         Plain{"grad_norm", "gradient norm", "L2 norm", true}}) {
    io::Series s = column(m, xkey, k.key);
    if (!has_values(s)) continue;
    io::PlotSpec p = panel(k.title, k.ylabel, k.log_y);
    p.series.push_back(std::move(s));
    panels.push_back(std::move(p));
  }

  io::Series tps = column(m, xkey, "tokens_per_s");
  if (!has_values(tps)) tps = derived_throughput(m, xkey);
  if (has_values(tps)) {
    // Image-text runs count pairs where language models count tokens.
    io::PlotSpec p = panel("throughput", has_values(column(m, xkey, "logit_scale")) ? "pairs/s" : "tokens/s", false);
    p.series.push_back(std::move(tps));
    panels.push_back(std::move(p));
  }
  WENSU_CHECK(!panels.empty(), m.path, " has none of loss, val_loss, val_ppl, lr, grad_norm, tokens_per_s; its numeric keys: ",
              keys_present(m), " (choose with --keys)");
  return panels;
}

std::vector<io::PlotSpec> key_panels(const Metrics& m, const std::string& xkey, const std::string& keys, int smooth) {
  std::vector<std::string> names;
  boost::algorithm::split(names, keys, [](char c) { return c == ','; });
  std::vector<io::PlotSpec> panels;
  for (auto& key : names) {
    if (key.empty()) continue;
    io::Series s = column(m, xkey, key);
    WENSU_CHECK(has_values(s), m.path, " has no numbers for '", key, "' (against '", xkey, "'); its numeric keys: ",
                keys_present(m));
    io::PlotSpec p;
    p.title = key, p.xlabel = xkey, p.ylabel = key;
    p.log_y = key.find("ppl") != std::string::npos || key.find("perplexity") != std::string::npos;
    add_smoothed(p, std::move(s), smooth, static_cast<int>(panels.size()));
    panels.push_back(std::move(p));
  }
  WENSU_CHECK(!panels.empty(), "--keys '", keys, "' names no key");
  return panels;
}

}  // namespace

int cmd_plot(const Args& args) {
  std::string out, xkey, keys;
  int smooth = -1, width = 1000, height = 320;
  po::options_description visible(
      "usage: wensu plot METRICS.jsonl [-o OUT.png] [options]\n"
      "\n"
      "Draws training curves from a run's metrics.jsonl (one JSON object per line, as\n"
      "`wensu demo` and the trainers write) into a PNG, SVG or PDF (by OUT's extension).\n"
      "Default panels, each when the file has it: training loss (with its moving average)\n"
      "and validation loss; validation perplexity (val_ppl, or exp(val_loss); log axis);\n"
      "learning rate (lr); gradient norm (grad_norm; log axis); throughput (tokens_per_s,\n"
      "or from tokens and elapsed_s). Lines may lack keys; a line that is not a JSON\n"
      "object is an error naming it.\n"
      "\n"
      "options");
  visible.add_options()("help,h", "show this help")
      ("out,o", po::value(&out), "picture to write (default: loss.png next to METRICS)")
      ("x", po::value(&xkey)->default_value("step"), "x axis key: step, tokens, elapsed_s, ...")
      ("keys", po::value(&keys), "comma-separated keys, one panel each, instead of the default panels")
      ("smooth", po::value(&smooth)->default_value(-1),
       "moving-average window for the loss (and --keys) curves; -1 = about 1/50 of the points, 0 = off")
      ("width", po::value(&width)->default_value(width), "picture width in pixels")
      ("height", po::value(&height)->default_value(height), "height of each panel in pixels");
  po::options_description all;
  all.add(visible).add_options()("metrics", po::value<std::string>(), "metrics file");
  po::positional_options_description positional;
  positional.add("metrics", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << visible << "\n";
    return 0;
  }
  po::notify(vm);
  WENSU_CHECK(vm.count("metrics"), "missing METRICS.jsonl (usage: wensu plot RUN/metrics.jsonl [-o OUT.png])");

  Metrics m;
  m.path = vm["metrics"].as<std::string>();
  m.lines = io::read_json_lines(m.path);
  if (m.lines.truncated_tail)
    std::fprintf(stderr, "wensu plot: warning: %s: the last line is incomplete (a run still writing?); left out\n",
                 m.path.c_str());
  WENSU_CHECK(!m.lines.objects.empty(), m.path, " holds no metrics (no JSON lines)");
  if (out.empty()) out = (std::filesystem::path(m.path).parent_path() / "loss.png").string();

  int64_t with_x = 0;
  for (size_t i = 0; i < m.lines.objects.size(); ++i) with_x += !std::isnan(number_at(m, i, xkey));
  WENSU_CHECK(with_x > 0, m.path, " has no numbers for the x axis '", xkey, "'; its numeric keys: ", keys_present(m));
  if (smooth < 0) smooth = static_cast<int>(with_x / 50);

  std::vector<io::PlotSpec> panels = keys.empty() ? default_panels(m, xkey, smooth) : key_panels(m, xkey, keys, smooth);
  io::plot_lines(panels, out, width, height);
  std::string names;
  for (auto& p : panels) names += (names.empty() ? "" : ", ") + p.title;
  std::printf("wrote %s: %zu panel%s (%s) over %lld record%s\n", out.c_str(), panels.size(),
              panels.size() == 1 ? "" : "s", names.c_str(), static_cast<long long>(with_x), with_x == 1 ? "" : "s");
  return 0;
}

}  // namespace wensu::app
