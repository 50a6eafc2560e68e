// Plots people look at: line charts of training curves (`wensu plot`) and heatmaps (contact
// maps), drawn with PLplot (Debian's libplplot-dev + plplot-driver-cairo, installed by
// scripts/setup.sh) into PNG, SVG or PDF, chosen by the output file's extension.
//
// PNG and PDF go through PLplot's cairo drivers (anti-aliased); SVG through PLplot's own svg
// driver, which keeps text as <text> elements (searchable, editable) where cairo would turn
// every glyph into a path.
//
// Writes are atomic: the picture is drawn into a temporary file next to the output and renamed
// over it, so an error never leaves a partial picture behind. Every failure is a wensu::Error
// that names the output file. PLplot keeps global state, so calls are serialised by a mutex.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wensu::io {

// One curve. Points whose x or y is not finite (or y <= 0 on a log axis) are left out, and
// the line breaks there; a point with no neighbour is drawn as a dot.
struct Series {
  std::string name;         // legend entry ("" = not in the legend)
  std::vector<double> x, y;  // same length
  double line_width = 1.5;
  double alpha = 1.0;        // opacity in (0, 1]: e.g. faint raw values under a moving average
  int color = -1;            // index into the palette (10 colours); -1 = the series' position
};

// One panel: axes, labels and its curves. The axes span the data of all its series.
struct PlotSpec {
  std::string title, xlabel, ylabel;
  bool log_y = false;  // logarithmic y axis (decades labelled 10^k)
  std::vector<Series> series;
};

// Draws the panels one below the other into `out_path` (.png, .svg or .pdf). The picture is
// `width` x (`height_per_panel` * panels.size()) pixels (points for SVG and PDF). A legend
// appears in a panel with two or more named series.
void plot_lines(const std::vector<PlotSpec>& panels, const std::string& out_path, int width = 1000,
                int height_per_panel = 400);

// Draws a rows x cols matrix (row-major `values`, e.g. a contact map) as square cells, row 0
// at the top like a printed matrix, with a colour bar from min to max. Values must be finite.
void plot_heatmap(const std::vector<float>& values, int64_t rows, int64_t cols, const std::string& title,
                  const std::string& out_path);

// Centred moving average: out[i] is the mean of the finite values among
// y[i - (window-1)/2 .. i + window/2] (clipped to the data; NaN when there are none). Centred so
// the smoothed curve does not lag behind the raw one where it changes fast. window <= 1
// returns y unchanged.
std::vector<double> moving_average(const std::vector<double>& y, int window);

}  // namespace wensu::io
