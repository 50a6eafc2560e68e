// Images in and out for the image-text models: PNG/JPEG files into float tensors, and float
// tensors back out as PNG. Decoding, resampling and encoding are Debian's stb (libstb-dev:
// stb_image, stb_image_resize, stb_image_write); this file only fixes the conventions around them.
//
// Conventions of a loaded image (what the image tower sees):
//   - float32 [3, size, size], channel-major (R, G, B planes), rows top to bottom, values in [0, 1]
//     (byte / 255; no sRGB-to-linear conversion and no mean/std normalisation: that is the model's);
//   - transparency is composited over ImageOptions::background (icons and emoji are mostly
//     transparent, and a black default would turn their outlines into the dominant feature);
//   - a non-square image is padded with the background to a centred square, so a wide image keeps
//     its aspect and nothing is cropped away (a caption may name what is at the edge);
//   - the square is resampled to size x size with stb_image_resize's defaults (Mitchell when
//     shrinking, Catmull-Rom when enlarging) on float pixels, without sRGB conversion; results are
//     clamped to [0, 1] because both filters have small negative lobes. An image that is already
//     size x size after padding is not resampled at all (both filters would blur it slightly).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "wensu/core/tensor.h"

namespace wensu::io {

struct ImageOptions {
  int64_t size = 32;                                   // output is size x size (1..8192)
  std::array<float, 3> background = {1.f, 1.f, 1.f};  // RGB in [0, 1]; transparent pixels are composited over it
};

// Decodes a PNG or JPEG (anything stb_image reads: grey, grey+alpha, RGB, RGBA, 8 or 16 bits per
// channel), composites alpha over opts.background, pads to a centred square and resizes to
// opts.size as described above. Returns float32 [3, size, size] in [0, 1] on the CPU.
// Throws wensu::Error naming the file (and stb_image's reason where it gives one) for a missing or
// unreadable file, a truncated or corrupt image, a file that is no image stb_image knows, or a
// zero-sized image; and for options out of range.
Tensor load_image(const std::string& path, const ImageOptions& opts = {});

// Writes chw, float [3, H, W] (float32 or float64, any device, any strides) as an 8-bit RGB PNG:
// values are clamped to [0, 1] and rounded to byte = round(v * 255), so load_image at the same
// size gives back the values to within 1/510. Atomic: the PNG is written to a temporary file next
// to `path` and renamed over it, so a reader never sees a partial file. Throws wensu::Error naming
// the file for a wrong shape or dtype, a NaN, or a file that cannot be written.
void save_image_png(const std::string& path, const Tensor& chw);

}  // namespace wensu::io
