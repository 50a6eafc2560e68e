// Line charts and heatmaps through PLplot (plot.h says what and why).
//
// PLplot ends the process (plexit) on some errors and asks on stdin for a device or a file name
// when the one it was given does not work, so everything a user can get wrong is checked here
// before PLplot sees it: the extension, the driver being installed, the temporary file being
// creatable, the data ranges being non-empty. Its recoverable complaints (plabort) are caught
// and turned into a wensu::Error after the stream is closed.
#include "wensu/io/plot.h"

#include <plplot.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>

#include "wensu/core/check.h"

namespace wensu::io {
namespace {

namespace fs = std::filesystem;

// cmap0 entries: 0 background, 1 axes and text, 2 grid, 3.. the palette, then one scratch
// entry whose colour (and opacity) is set per series just before it is drawn.
constexpr int kBackground = 0, kInk = 1, kGrid = 2, kPalette0 = 3;
// Tableau 10: distinguishable, and still readable for the common colour-vision deficiencies.
constexpr unsigned char kPalette[10][3] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},  {214, 39, 40},
                                           {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                           {188, 189, 34},  {23, 190, 207}};
constexpr int kPaletteSize = 10;
constexpr int kScratch = kPalette0 + kPaletteSize;

std::mutex g_plplot;       // PLplot's state (current stream, handlers) is global
std::string g_plplot_abort;  // the first plabort message of the current drawing

void record_abort(const char* message) {
  if (g_plplot_abort.empty()) g_plplot_abort = message;
}

std::string extension_of(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The PLplot device for an output path, by extension.
const char* device_for(const std::string& path) {
  const std::string ext = extension_of(path);
  if (ext == ".png") return "pngcairo";
  if (ext == ".pdf") return "pdfcairo";
  if (ext == ".svg") return "svg";
  WENSU_CHECK(false, "plot ", path, ": unknown picture type '", ext, "': name the file .png, .svg or .pdf");
  return nullptr;
}

void check_device_installed(const char* device) {
  std::vector<const char*> menus(256), names(256);
  int n = static_cast<int>(names.size());  // in: room in the arrays; out: devices found
  const char** m = menus.data();
  const char** d = names.data();
  plgDevs(&m, &d, &n);
  for (int i = 0; i < n; ++i)
    if (std::strcmp(names[i], device) == 0) return;
  WENSU_CHECK(false, "PLplot has no '", device, "' driver: install plplot-driver-cairo (scripts/setup.sh does)");
}

// PLplot reads '#' as the start of an escape sequence (#u, #d, #(nnn)); a literal one is "##".
std::string plplot_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '#') out += '#';
  }
  return out;
}

// Opens a PLplot stream drawing into a temporary file next to `out_path`, runs `draw`, closes
// the stream and renames the file over `out_path`. Nothing is left behind on error.
void render(const std::string& out_path, int width, int height, const std::function<void()>& draw) {
  const char* device = device_for(out_path);
  std::lock_guard<std::mutex> lock(g_plplot);
  check_device_installed(device);

  std::string tmp = out_path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  WENSU_CHECK(fd >= 0, "plot ", out_path, ": cannot create a file there: ", std::strerror(errno));
  FILE* file = ::fdopen(fd, "wb");
  if (!file) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    WENSU_CHECK(false, "plot ", out_path, ": cannot open ", tmp, ": ", std::strerror(err));
  }
  ::fchmod(fd, 0644);  // mkstemp makes the file private; a picture is for others to see

  g_plplot_abort.clear();
  plsabort(record_abort);
  PLINT stream = 0;
  plmkstrm(&stream);
  plsdev(device);
  plsfile(file);  // the stream owns the FILE from here on: plend1 closes it
  plspage(0, 0, width, height, 0, 0);
  plscmap0n(kScratch + 1);
  plscol0a(kBackground, 255, 255, 255, 1.0);
  plscol0a(kInk, 0, 0, 0, 1.0);
  plscol0a(kGrid, 225, 225, 225, 1.0);
  for (int i = 0; i < kPaletteSize; ++i)
    plscol0a(kPalette0 + i, kPalette[i][0], kPalette[i][1], kPalette[i][2], 1.0);
  plinit();
  draw();
  plend1();
  plsabort(nullptr);  // back to PLplot's default (print the message)

  auto fail = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    throw Error("plot " + out_path + ": " + why);
  };
  if (!g_plplot_abort.empty()) fail("PLplot: " + g_plplot_abort);
  // PLplot closes the file itself and ignores write errors: an empty file is how they show.
  struct stat st {};
  if (::stat(tmp.c_str(), &st) != 0 || st.st_size == 0) fail("nothing was written to " + tmp + " (disk full?)");
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0)
    fail("cannot rename " + tmp + " to " + out_path + ": " + std::strerror(errno));
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

bool usable(double x, double y, bool log_y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); }

// The y coordinate PLplot gets: log axes are drawn in log10 space (plbox's "l" option then
// labels the decades).
double y_coord(double y, bool log_y) { return log_y ? std::log10(y) : y; }

void draw_series(const Series& s, int index, bool log_y) {
  const int c = s.color >= 0 ? s.color % kPaletteSize : index % kPaletteSize;
  plscol0a(kScratch, kPalette[c][0], kPalette[c][1], kPalette[c][2], s.alpha);
  plcol0(kScratch);
  plwidth(s.line_width);
  std::vector<PLFLT> xs, ys;
  auto flush = [&] {
    if (xs.size() == 1) plpoin(1, xs.data(), ys.data(), 17);  // a lone point: a dot
    if (xs.size() > 1) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
    xs.clear();
    ys.clear();
  };
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!usable(s.x[i], s.y[i], log_y)) {
      flush();
      continue;
    }
    xs.push_back(s.x[i]);
    ys.push_back(y_coord(s.y[i], log_y));
  }
  flush();
  plwidth(1.0);
}

void draw_legend(const PlotSpec& p) {
  std::vector<std::string> texts;
  std::vector<PLINT> opts, text_colors, line_colors, line_styles;
  std::vector<PLFLT> line_widths;
  for (size_t i = 0; i < p.series.size(); ++i) {
    const Series& s = p.series[i];
    if (s.name.empty()) continue;
    texts.push_back(plplot_text(s.name));
    opts.push_back(PL_LEGEND_LINE);
    text_colors.push_back(kInk);
    line_colors.push_back(kPalette0 + (s.color >= 0 ? s.color % kPaletteSize : static_cast<int>(i) % kPaletteSize));
    line_styles.push_back(1);
    line_widths.push_back(std::max(s.line_width, 1.5));
  }
  if (texts.size() < 2) return;  // one curve: the panel title names it
  std::vector<const char*> text_ptrs;
  for (auto& t : texts) text_ptrs.push_back(t.c_str());
  PLFLT w = 0, h = 0;
  pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.01, 0.02, 0.06,
           kBackground, kInk, 1, 0, 0, static_cast<PLINT>(texts.size()), opts.data(), 0.6, 0.9, 2.0, 0.0,
           text_colors.data(), text_ptrs.data(), nullptr, nullptr, nullptr, nullptr, line_colors.data(),
           line_styles.data(), line_widths.data(), nullptr, nullptr, nullptr, nullptr);
}

// The axis limits for a panel's data: x tight, y with 5% room; a single value gets a unit of
// room (a decade on log axes) so PLplot never sees an empty window.
void panel_window(const PlotSpec& p, double& x0, double& x1, double& y0, double& y1, bool& has_data) {
  Range xr, yr;
  for (auto& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], s.y[i], p.log_y)) {
        xr.add(s.x[i]);
        yr.add(y_coord(s.y[i], p.log_y));
      }
  has_data = !xr.empty();
  if (!has_data) {
    x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    return;
  }
  x0 = xr.lo, x1 = xr.hi;
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  const double pad = yr.hi > yr.lo ? 0.05 * (yr.hi - yr.lo) : (p.log_y ? 0.5 : std::max(0.1 * std::fabs(yr.lo), 0.5));
  y0 = yr.lo - pad, y1 = yr.hi + pad;
}

void draw_panel(const PlotSpec& spec) {
  double x0, x1, y0, y1;
  bool has_data;
  // PLplot labels a log axis at decades only: data within one decade (a perplexity going from
  // 14.9 to 14.5) would get no labels at all, so it is drawn on a linear axis instead.
  PlotSpec p = spec;
  panel_window(p, x0, x1, y0, y1, has_data);
  if (p.log_y && has_data && y1 - y0 < 1.0) {
    p.log_y = false;
    panel_window(p, x0, x1, y0, y1, has_data);
  }
  pladv(0);
  plvsta();
  plwind(x0, x1, y0, y1);
  const std::string yopt = p.log_y ? "l" : "";
  plcol0(kGrid);
  plbox("g", 0, 0, ("g" + yopt).c_str(), 0, 0);
  plcol0(kInk);
  plbox("bcnst", 0, 0, ("bcnstv" + yopt).c_str(), 0, 0);
  pllab(plplot_text(p.xlabel).c_str(), plplot_text(p.ylabel).c_str(), plplot_text(p.title).c_str());
  if (!has_data) plmtex("t", -2.0, 0.5, 0.5, "no data");
  for (size_t i = 0; i < p.series.size(); ++i) draw_series(p.series[i], static_cast<int>(i), p.log_y);
  plcol0(kInk);
  draw_legend(p);
}

// Viridis (perceptually uniform, readable in grey), by a few control points PLplot interpolates.
void set_viridis() {
  const PLFLT pos[] = {0.0, 0.25, 0.5, 0.75, 1.0};
  const PLFLT r[] = {0.267, 0.231, 0.128, 0.369, 0.993};
  const PLFLT g[] = {0.005, 0.322, 0.567, 0.789, 0.906};
  const PLFLT b[] = {0.329, 0.546, 0.551, 0.383, 0.144};
  plscmap1n(256);
  plscmap1l(1, 5, pos, r, g, b, nullptr);
}

}  // namespace

std::vector<double> moving_average(const std::vector<double>& y, int window) {
  if (window <= 1) return y;
  const int64_t n = static_cast<int64_t>(y.size()), before = (window - 1) / 2, after = window / 2;
  std::vector<double> out(y.size());
  // A sliding sum over the finite values of [i - before, i + after], clipped to the data.
  double sum = 0;
  int64_t count = 0, hi = -1;
  for (int64_t i = 0; i < n; ++i) {
    for (; hi < std::min(n - 1, i + after); ++hi)
      if (std::isfinite(y[hi + 1])) sum += y[hi + 1], ++count;
    if (const int64_t gone = i - before - 1; gone >= 0 && std::isfinite(y[gone])) sum -= y[gone], --count;
    out[i] = count > 0 ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

void plot_lines(const std::vector<PlotSpec>& panels, const std::string& out_path, int width, int height_per_panel) {
  device_for(out_path);  // an unknown extension fails before any other check
  WENSU_CHECK(!panels.empty(), "plot ", out_path, ": no panels to draw");
  WENSU_CHECK(width >= 100 && width <= 20000 && height_per_panel >= 100 && height_per_panel <= 20000, "plot ",
              out_path, ": size ", width, " x ", height_per_panel, " per panel is outside 100..20000");
  WENSU_CHECK(panels.size() <= 64, "plot ", out_path, ": ", panels.size(), " panels (at most 64)");
  for (auto& p : panels)
    for (auto& s : p.series) {
      WENSU_CHECK(s.x.size() == s.y.size(), "plot ", out_path, ": panel '", p.title, "', series '", s.name, "' has ",
                  s.x.size(), " x values and ", s.y.size(), " y values");
      WENSU_CHECK(s.alpha > 0 && s.alpha <= 1, "plot ", out_path, ": series '", s.name, "' has opacity ", s.alpha,
                  " (must be in (0, 1])");
    }
  const int height = height_per_panel * static_cast<int>(panels.size());
  render(out_path, width, height, [&] {
    plssub(1, static_cast<PLINT>(panels.size()));
    plsxax(6, 0);  // step counts up to 999999 stay plain numbers instead of "x10^5" labels
    for (auto& p : panels) draw_panel(p);
  });
}

void plot_heatmap(const std::vector<float>& values, int64_t rows, int64_t cols, const std::string& title,
                  const std::string& out_path) {
  device_for(out_path);
  WENSU_CHECK(rows > 0 && cols > 0, "plot ", out_path, ": heatmap of ", rows, " x ", cols, " (both must be > 0)");
  WENSU_CHECK(static_cast<int64_t>(values.size()) == rows * cols, "plot ", out_path, ": heatmap of ", rows, " x ",
              cols, " needs ", rows * cols, " values, got ", values.size());
  Range z;
  for (size_t i = 0; i < values.size(); ++i) {
    WENSU_CHECK(std::isfinite(values[i]), "plot ", out_path, ": heatmap value at row ", static_cast<int64_t>(i) / cols,
                ", column ", static_cast<int64_t>(i) % cols, " is ", values[i], " (must be finite)");
    z.add(values[i]);
  }
  double zmin = z.lo, zmax = z.hi;
  if (zmax == zmin) zmax = zmin + 1;  // a constant map: the colour bar still needs a range

  // plimagefr wants idata[x][y]: column-major from our point of view.
  std::vector<PLFLT> data(static_cast<size_t>(rows * cols));
  std::vector<const PLFLT*> columns(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < rows; ++r) data[c * rows + r] = values[r * cols + c];
    columns[c] = data.data() + c * rows;
  }
  render(out_path, 760, 640, [&] {
    set_viridis();
    pladv(0);
    // Square cells: the viewport's aspect (height / width) is rows / cols; the right-hand
    // margin holds the colour bar.
    plvpas(0.1, 0.82, 0.1, 0.9, static_cast<double>(rows) / static_cast<double>(cols));
    plwind(0, static_cast<double>(cols), static_cast<double>(rows), 0);  // row 0 at the top
    plimagefr(columns.data(), static_cast<PLINT>(cols), static_cast<PLINT>(rows), 0, static_cast<double>(cols), 0,
              static_cast<double>(rows), zmin, zmax, zmin, zmax, nullptr, nullptr);
    plcol0(kInk);
    plbox("bcnst", 0, 0, "bcnstv", 0, 0);
    pllab("column", "row", plplot_text(title).c_str());
    PLFLT w = 0, h = 0;
    const char* axis_opts[] = {"bcvtm"};
    PLFLT ticks[] = {0.0};
    PLINT sub_ticks[] = {0};
    PLINT n_values[] = {2};
    PLFLT range[] = {zmin, zmax};
    const PLFLT* value_rows[] = {range};
    plcolorbar(&w, &h, PL_COLORBAR_IMAGE, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.03, 0.0,
               0.04, 1.0, kBackground, kInk, 1, 0.0, 0.0, 0, 0.0, 0, nullptr, nullptr, 1, axis_opts, ticks, sub_ticks,
               n_values, value_rows);
  });
}

}  // namespace wensu::io
