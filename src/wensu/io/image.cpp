// PNG/JPEG in, PNG out, through Debian's compiled stb (libstb.so); the conventions are in image.h.
#include "wensu/io/image.h"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "wensu/core/check.h"

namespace wensu::io {
namespace {

namespace fs = std::filesystem;

// The whole file: stb_image would report a missing file only as "can't fopen", so it is read
// here, where errno can say why.
std::string read_file(const std::string& path) {
  std::error_code ec;
  WENSU_CHECK(!fs::is_directory(path, ec), "image ", path, ": is a directory, not an image file");
  std::ifstream in(path, std::ios::binary);
  WENSU_CHECK(in.good(), "image ", path, ": cannot open: ", std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WENSU_CHECK(!in.bad(), "image ", path, ": read error: ", std::strerror(errno));
  WENSU_CHECK(!bytes.empty(), "image ", path, ": the file is empty");
  return bytes;
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace

Tensor load_image(const std::string& path, const ImageOptions& opts) {
  WENSU_CHECK(opts.size >= 1 && opts.size <= 8192, "image ", path, ": the output size must be in 1..8192, got ",
              opts.size);
  for (float b : opts.background)
    WENSU_CHECK(b >= 0.f && b <= 1.f, "image ", path, ": background colour components must be in [0, 1], got ", b);

  const std::string bytes = read_file(path);
  WENSU_CHECK(bytes.size() <= size_t(INT32_MAX), "image ", path, ": file of ", bytes.size(),
              " bytes is too large for stb_image (at most 2 GiB)");
  // Four channels whatever the file holds: stb_image expands grey to RGB, adds an opaque alpha
  // where there is none, and reduces 16-bit PNGs to 8 bits.
  int w = 0, h = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, StbFree> rgba(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &w, &h,
                            &channels_in_file, 4));
  if (!rgba) {
    const char* why = stbi_failure_reason();
    WENSU_CHECK(false, "image ", path, ": cannot decode it (stb_image: ", why ? why : "unknown error",
                "); is it a complete, uncorrupted PNG or JPEG file?");
  }
  WENSU_CHECK(w > 0 && h > 0, "image ", path, ": the image is empty (", w, " x ", h, " pixels)");
  // The padded square is held as floats: 16384^2 x 3 x 4 bytes = 3 GiB is the most we accept.
  WENSU_CHECK(w <= 16384 && h <= 16384, "image ", path, ": ", w, " x ", h,
              " pixels is too large (at most 16384 on a side); shrink it first");

  // Composite over the background into a centred square of side s = max(w, h), interleaved RGB
  // floats (what stb_image_resize takes).
  const int64_t s = std::max(w, h);
  const int64_t x0 = (s - w) / 2, y0 = (s - h) / 2;
  const auto& bg = opts.background;
  std::vector<float> square(size_t(s * s * 3));  // [s, s, 3]
  for (int64_t i = 0; i < s * s; ++i)
    for (int c = 0; c < 3; ++c) square[size_t(i * 3 + c)] = bg[size_t(c)];
  const stbi_uc* px = rgba.get();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const stbi_uc* p = px + (y * w + x) * 4;
      const float a = p[3] / 255.f;
      float* q = &square[size_t(((y + y0) * s + (x + x0)) * 3)];
      for (int c = 0; c < 3; ++c) q[c] = a * (p[c] / 255.f) + (1.f - a) * bg[size_t(c)];
    }
  }
  rgba.reset();

  const int64_t n = opts.size;
  std::vector<float> resized;
  const std::vector<float>* hwc = &square;
  if (s != n) {
    resized.resize(size_t(n * n * 3));  // [n, n, 3]
    // Clamp at the edges: the border is background already, so no colour from outside leaks in.
    const int ok = stbir_resize_float_generic(square.data(), int(s), int(s), 0, resized.data(), int(n), int(n), 0, 3,
                                              STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_FILTER_DEFAULT,
                                              STBIR_COLORSPACE_LINEAR, nullptr);
    WENSU_CHECK(ok, "image ", path, ": stb_image_resize could not resize ", s, " x ", s, " to ", n, " x ", n,
                " (out of memory?)");
    hwc = &resized;
  }

  Tensor out = Tensor::empty({3, n, n});  // [3, n, n]
  float* o = out.data<float>();
  for (int64_t i = 0; i < n * n; ++i)
    for (int64_t c = 0; c < 3; ++c) o[c * n * n + i] = std::clamp((*hwc)[size_t(i * 3 + c)], 0.f, 1.f);
  return out;
}

namespace {

void append_bytes(void* context, void* data, int size) {
  auto* buf = static_cast<std::string*>(context);
  buf->append(static_cast<const char*>(data), size_t(size));
}

}  // namespace

void save_image_png(const std::string& path, const Tensor& chw) {
  WENSU_CHECK(chw.defined(), "save_image_png ", path, ": the image tensor is undefined");
  WENSU_CHECK(chw.dtype() == DType::f32 || chw.dtype() == DType::f64, "save_image_png ", path,
              ": the image must be float32 or float64, got ", chw.describe());
  WENSU_CHECK(chw.dim() == 3 && chw.size(0) == 3, "save_image_png ", path, ": the image must be [3, H, W] (RGB), got ",
              chw.describe());
  const int64_t h = chw.size(1), w = chw.size(2);
  WENSU_CHECK(h >= 1 && w >= 1 && h <= 65535 && w <= 65535, "save_image_png ", path,
              ": height and width must be in 1..65535, got ", h, " x ", w);

  const std::vector<float> v = chw.to_vector<float>();  // [3, h, w], contiguous on the CPU
  std::vector<unsigned char> rgb(size_t(h * w * 3));   // [h, w, 3], what PNG rows hold
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < h * w; ++i) {
      const float x = v[size_t(c * h * w + i)];
      WENSU_CHECK(!std::isnan(x), "save_image_png ", path, ": the image holds NaN (channel ", c, ", row ", i / w,
                  ", column ", i % w, ")");
      rgb[size_t(i * 3 + c)] = static_cast<unsigned char>(std::lround(std::clamp(x, 0.f, 1.f) * 255.f));
    }
  }

  std::string png;
  const int ok = stbi_write_png_to_func(append_bytes, &png, int(w), int(h), 3, rgb.data(), int(w * 3));
  WENSU_CHECK(ok && !png.empty(), "save_image_png ", path, ": stb_image_write could not encode the PNG");

  // The temporary sits in the same directory so the rename stays on one filesystem (atomic).
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  WENSU_CHECK(f != nullptr, "save_image_png ", path, ": cannot create ", tmp, ": ", std::strerror(errno));
  const bool written = std::fwrite(png.data(), 1, png.size(), f) == png.size();
  const int write_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    const int err = written ? errno : write_errno;
    std::remove(tmp.c_str());
    WENSU_CHECK(false, "save_image_png ", path, ": cannot write ", tmp, ": ", std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    WENSU_CHECK(false, "save_image_png ", path, ": cannot rename ", tmp, " to it: ", std::strerror(err));
  }
}

}  // namespace wensu::io
