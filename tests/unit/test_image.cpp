// Images (io/image.h): load_image against plain loops on files written by stb_image_write (RGB,
// RGBA, grey, grey+alpha PNG, and JPEG): exact round trips at the image's own size, alpha
// compositing, centred padding of non-square images, resampling of constant and smooth images
// (the 2x case against a 2x2 box average); errors that name the file for missing, truncated,
// corrupt, non-image and zero-sized files; save_image_png's clamping, layouts and refusals; the
// committed image-caption fixture (tests/data/mm) loads, and its broken.png does not.
#include <gtest/gtest.h>
// The test writes its inputs with stb_image_write directly (save_image_png writes only RGB). The
// library keeps stb's include folder private, so the header is named from /usr/include here.
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/core/tensor.h"
#include "wensu/io/image.h"

using namespace wensu;
using namespace wensu::io;
namespace fs = std::filesystem;

namespace {

constexpr float kByte = 1.f / 255.f;

class Image : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    seed_ = std::random_device{}();
    rng_.seed(seed_);
  }

  // h x w pixels of `comp` random bytes each (interleaved, as stb_image_write takes them).
  std::vector<uint8_t> random_bytes(int h, int w, int comp) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<uint8_t> px(size_t(h * w * comp));
    for (auto& b : px) b = uint8_t(byte(rng_));
    return px;
  }
  // A smooth picture: each channel a low-frequency wave with a random phase, in bytes.
  std::vector<uint8_t> smooth_bytes(int h, int w, int comp) {
    std::uniform_real_distribution<double> phase(0.0, 6.283);
    std::vector<uint8_t> px(size_t(h * w * comp));
    for (int c = 0; c < comp; ++c) {
      const double px_phase = phase(rng_), py_phase = phase(rng_);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const double v = 0.5 + 0.2 * std::sin(6.283 * x / w + px_phase) + 0.2 * std::cos(6.283 * y / h + py_phase);
          px[size_t((y * w + x) * comp + c)] = uint8_t(std::lround(v * 255.0));
        }
    }
    return px;
  }
  std::string write_png(const std::string& name, const std::vector<uint8_t>& px, int h, int w, int comp) {
    const std::string p = path(name);
    EXPECT_NE(stbi_write_png(p.c_str(), w, h, comp, px.data(), w * comp), 0) << p;
    return p;
  }
  std::array<float, 3> random_background() {
    std::uniform_real_distribution<float> u(0.f, 1.f);
    return {u(rng_), u(rng_), u(rng_)};
  }

  unsigned seed_ = 0;
  std::mt19937 rng_;
};

// img[c, y, x] of a [3, n, n] float tensor.
float at(const std::vector<float>& img, int64_t n, int c, int64_t y, int64_t x) {
  return img[size_t((c * n + y) * n + x)];
}

using test::error_of;

TEST_F(Image, RgbPngRoundTripsExactlyAtItsOwnSize) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const int64_t n = 23;
  std::uniform_real_distribution<float> u(-0.2f, 1.2f);  // out of [0, 1] on purpose: saving clamps
  Tensor img = Tensor::empty({3, n, n});                  // [3, n, n]
  for (int64_t i = 0; i < img.numel(); ++i) img.data<float>()[i] = u(rng_);
  save_image_png(path("rgb.png"), img);

  ImageOptions opts;
  opts.size = n;
  Tensor back = load_image(path("rgb.png"), opts);  // [3, n, n]
  ASSERT_EQ(back.shape(), (Shape{3, n, n}));
  ASSERT_EQ(back.dtype(), DType::f32);
  const std::vector<float> want = img.to_vector<float>(), got = back.to_vector<float>();
  for (size_t i = 0; i < want.size(); ++i) {
    const float byte = std::round(std::clamp(want[i], 0.f, 1.f) * 255.f);
    ASSERT_EQ(got[i], byte / 255.f) << "element " << i << " saved as " << want[i];
  }
  EXPECT_FALSE(fs::exists(path("rgb.png.tmp." + std::to_string(::getpid()))));
}

TEST_F(Image, AlphaIsCompositedOverTheBackground) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const int n = 17;
  // RGBA and grey+alpha, against rgb * a + background * (1 - a) computed here.
  for (int comp : {4, 2}) {
    SCOPED_TRACE("components " + std::to_string(comp));
    const std::vector<uint8_t> px = random_bytes(n, n, comp);
    const std::string p = write_png("alpha" + std::to_string(comp) + ".png", px, n, n, comp);
    ImageOptions opts;
    opts.size = n;
    opts.background = random_background();
    const std::vector<float> got = load_image(p, opts).to_vector<float>();
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        const uint8_t* q = &px[size_t((y * n + x) * comp)];
        const double a = q[comp - 1] / 255.0;
        for (int c = 0; c < 3; ++c) {
          const double v = (comp == 4 ? q[c] : q[0]) / 255.0;
          const double want = a * v + (1.0 - a) * opts.background[size_t(c)];
          ASSERT_NEAR(at(got, n, c, y, x), want, 1e-6) << "pixel " << y << "," << x << " channel " << c;
        }
      }
  }
}

TEST_F(Image, GreyBecomesThreeEqualChannels) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const int n = 9;
  const std::vector<uint8_t> px = random_bytes(n, n, 1);
  ImageOptions opts;
  opts.size = n;
  const std::vector<float> got = load_image(write_png("grey.png", px, n, n, 1), opts).to_vector<float>();
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(at(got, n, c, y, x), px[size_t(y * n + x)] / 255.f);
}

TEST_F(Image, NonSquareImagesArePaddedToACentredSquare) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  // Wide (20 x 13: 3 rows above, 4 below) and tall (11 x 20: 4 columns left, 5 right).
  for (auto [h, w] : {std::pair{13, 20}, std::pair{20, 11}}) {
    SCOPED_TRACE(std::to_string(h) + " x " + std::to_string(w));
    const std::vector<uint8_t> px = random_bytes(h, w, 3);
    const std::string p = write_png("wide.png", px, h, w, 3);
    ImageOptions opts;
    opts.size = std::max(h, w);
    opts.background = random_background();
    const int64_t n = opts.size, y0 = (n - h) / 2, x0 = (n - w) / 2;
    const std::vector<float> got = load_image(p, opts).to_vector<float>();
    for (int64_t y = 0; y < n; ++y)
      for (int64_t x = 0; x < n; ++x) {
        const bool inside = y >= y0 && y < y0 + h && x >= x0 && x < x0 + w;
        for (int c = 0; c < 3; ++c) {
          const float want = inside ? px[size_t(((y - y0) * w + (x - x0)) * 3 + c)] / 255.f : opts.background[size_t(c)];
          ASSERT_EQ(at(got, n, c, y, x), want) << "pixel " << y << "," << x << " channel " << c;
        }
      }
  }
}

TEST_F(Image, ResizingAConstantImageKeepsItConstant) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::uniform_int_distribution<int> byte(0, 255);
  const uint8_t rgb[3] = {uint8_t(byte(rng_)), uint8_t(byte(rng_)), uint8_t(byte(rng_))};
  std::vector<uint8_t> px(48 * 48 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = rgb[i % 3];
  const std::string p = write_png("flat.png", px, 48, 48, 3);
  for (int64_t n : {7, 16, 32, 100}) {  // down by odd and even factors, and up
    ImageOptions opts;
    opts.size = n;
    const std::vector<float> got = load_image(p, opts).to_vector<float>();
    for (int64_t i = 0; i < n * n; ++i)
      for (int c = 0; c < 3; ++c) ASSERT_NEAR(got[size_t(c * n * n + i)], rgb[c] / 255.f, 1e-5) << "size " << n;
  }
}

TEST_F(Image, HalvingASmoothImageIsCloseToA2x2BoxAverage) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const int m = 64, n = 32;
  const std::vector<uint8_t> px = smooth_bytes(m, m, 3);
  ImageOptions opts;
  opts.size = n;
  const std::vector<float> got = load_image(write_png("smooth.png", px, m, m, 3), opts).to_vector<float>();
  double worst = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c) {
        double box = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) box += px[size_t(((2 * y + dy) * m + (2 * x + dx)) * 3 + c)] / 255.0;
        worst = std::max(worst, std::fabs(at(got, n, c, y, x) - box / 4));
      }
  // The waves change by at most ~0.04 per pixel, so any averaging filter of a few pixels' width
  // lands within a few thousandths of the box; a filter that skipped pixels or shifted the grid
  // by a pixel would be off by ~0.02 or more.
  EXPECT_LT(worst, 0.01);
}

TEST_F(Image, JpegReadsBackCloseToWhatWasWritten) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const int n = 40;
  const std::vector<uint8_t> px = smooth_bytes(n, n, 3);
  const std::string p = path("smooth.jpg");
  ASSERT_NE(stbi_write_jpg(p.c_str(), n, n, 3, px.data(), 95), 0);
  ImageOptions opts;
  opts.size = n;
  const std::vector<float> got = load_image(p, opts).to_vector<float>();
  double sum = 0, worst = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c) {
        const double err = std::fabs(at(got, n, c, y, x) - px[size_t((y * n + x) * 3 + c)] / 255.0);
        sum += err;
        worst = std::max(worst, err);
      }
  // Quality 95 on a smooth picture: under a level on average, a few at worst (measured: 0.6-0.8
  // and 3-4 levels).
  EXPECT_LT(sum / (n * n * 3), 2 * kByte);
  EXPECT_LT(worst, 10 * kByte);
}

TEST_F(Image, BadFilesThrowErrorsNamingTheFile) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const std::string missing = path("missing.png");
  EXPECT_NE(error_of([&] { load_image(missing); }).find(missing), std::string::npos);

  // A PNG cut in the middle of its pixel data.
  const std::vector<uint8_t> px = random_bytes(32, 32, 3);
  const std::string whole = write_png("whole.png", px, 32, 32, 3);
  std::ifstream in(whole, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string truncated = path("truncated.png");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_NE(error_of([&] { load_image(truncated); }).find(truncated), std::string::npos);

  const std::string text = path("notes.png");
  std::ofstream(text) << "this is a text file, not a picture\n";
  EXPECT_NE(error_of([&] { load_image(text); }).find(text), std::string::npos);

  const std::string empty = path("empty.png");
  std::ofstream{empty};
  EXPECT_NE(error_of([&] { load_image(empty); }).find(empty), std::string::npos);

  // A PNG header that declares a width of 0 (stb_image does not check chunk CRCs).
  const std::string zero = path("zero.png");
  const unsigned char sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const unsigned char ihdr[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 0, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  const unsigned char iend[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  {
    std::ofstream z(zero, std::ios::binary);
    z.write(reinterpret_cast<const char*>(sig), sizeof sig);
    z.write(reinterpret_cast<const char*>(ihdr), sizeof ihdr);
    z.write(reinterpret_cast<const char*>(iend), sizeof iend);
  }
  EXPECT_NE(error_of([&] { load_image(zero); }).find(zero), std::string::npos);

  EXPECT_NE(error_of([&] { load_image(dir_.string()); }).find(dir_.string()), std::string::npos);
}

TEST_F(Image, OptionsOutOfRangeAreRefused) {
  const std::string p = write_png("ok.png", random_bytes(4, 4, 3), 4, 4, 3);
  ImageOptions opts;
  opts.size = 0;
  EXPECT_THROW(load_image(p, opts), Error);
  opts.size = 8;
  opts.background = {0.f, 1.5f, 0.f};
  EXPECT_THROW(load_image(p, opts), Error);
}

TEST_F(Image, SaveTakesViewsAndFloat64AndRefusesWhatIsNoImage) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int64_t n = 10;
  // A float64 [n, n, 3] tensor permuted to [3, n, n]: a strided view, not contiguous.
  Tensor hwc = Tensor::empty({n, n, 3}, DType::f64);
  for (int64_t i = 0; i < hwc.numel(); ++i) hwc.data<double>()[i] = u(rng_);
  const Tensor chw = hwc.permute({2, 0, 1});
  ASSERT_FALSE(chw.is_contiguous());
  save_image_png(path("view.png"), chw);
  ImageOptions opts;
  opts.size = n;
  const std::vector<float> got = load_image(path("view.png"), opts).to_vector<float>();
  const std::vector<double> want = hwc.to_vector<double>();  // [n, n, 3]
  for (int64_t y = 0; y < n; ++y)
    for (int64_t x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_NEAR(at(got, n, c, y, x), want[size_t((y * n + x) * 3 + c)], 0.5 / 255 + 1e-6);

  const std::string out = path("bad.png");
  EXPECT_NE(error_of([&] { save_image_png(out, Tensor::zeros({4, n, n})); }).find(out), std::string::npos);
  EXPECT_NE(error_of([&] { save_image_png(out, Tensor::zeros({3, n})); }).find(out), std::string::npos);
  EXPECT_NE(error_of([&] { save_image_png(out, Tensor::zeros({3, n, n}, DType::i64)); }).find(out), std::string::npos);
  Tensor nan = Tensor::zeros({3, n, n});
  nan.data<float>()[7] = std::nanf("");
  EXPECT_NE(error_of([&] { save_image_png(out, nan); }).find(out), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  const std::string nowhere = path("no/such/folder/x.png");
  EXPECT_NE(error_of([&] { save_image_png(nowhere, Tensor::zeros({3, n, n})); }).find(nowhere), std::string::npos);
}

TEST(ImageFixture, EveryFixtureImageLoadsAndTheBrokenOneIsRefused) {
  const fs::path mm = fs::path(wensu::test::test_data_dir()) / "mm";
  std::ifstream tsv(mm / "pairs.tsv");
  ASSERT_TRUE(tsv.good()) << (mm / "pairs.tsv");
  std::string line;
  std::getline(tsv, line);
  ASSERT_EQ(line, "split\timage\tcaption\tsource");
  int pairs = 0;
  while (std::getline(tsv, line)) {
    std::vector<std::string> fields;
    std::stringstream cells(line);
    for (std::string f; std::getline(cells, f, '\t');) fields.push_back(f);
    ASSERT_EQ(fields.size(), 4u) << line;
    const std::string& rel = fields[1];
    const Tensor img = load_image((mm / rel).string());  // the default size, 32
    ASSERT_EQ(img.shape(), (Shape{3, 32, 32})) << rel;
    // Real pictures on white: not blank, and not all white (the composite worked).
    const std::vector<float> v = img.to_vector<float>();
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    EXPECT_LT(*lo, 0.9f) << rel;
    EXPECT_GT(*hi - *lo, 0.2f) << rel;
    ++pairs;
  }
  EXPECT_EQ(pairs, 24);
  const std::string broken = (mm / "broken.png").string();
  EXPECT_NE(error_of([&] { load_image(broken); }).find(broken), std::string::npos);
}

}  // namespace
