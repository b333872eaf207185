// ImageT<T>: an owned, interleaved, tightly packed image (row stride = width * channels).
//
//   Image rgb(640, 480, 3);            // uint8 RGB, zero-filled
//   rgb.at(x, y, 1) = 255;             // green
//   ImageF f = to_float(rgb);          // same layout, values 0..255 as float
//
// Colour images in fswap are RGB (not OpenCV's BGR); masks are 1-channel float in [0, 1].
// Not thread-safe; cheap to move, copies are deep.
#pragma once

#include <cstdint>
#include <vector>

namespace fswap {

template <class T>
struct ImageT {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<T> pixels;

  ImageT() = default;
  ImageT(int w, int h, int c, T fill = T{})
      : width(w), height(h), channels(c), pixels(static_cast<std::size_t>(w) * h * c, fill) {}

  bool empty() const { return pixels.empty(); }
  T* row(int y) { return pixels.data() + static_cast<std::size_t>(y) * width * channels; }
  const T* row(int y) const { return pixels.data() + static_cast<std::size_t>(y) * width * channels; }
  T& at(int x, int y, int c = 0) { return row(y)[x * channels + c]; }
  const T& at(int x, int y, int c = 0) const { return row(y)[x * channels + c]; }
};

using Image = ImageT<std::uint8_t>;
using ImageF = ImageT<float>;

// Integer rectangle, half-open: [x, x + width) × [y, y + height).
struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
  bool empty() const { return width <= 0 || height <= 0; }
  bool operator==(const Rect&) const = default;
};
Rect intersect(const Rect& a, const Rect& b);

// Element-wise conversions (no scaling: uint8 v ↔ float v, rounded and clamped to 0..255).
ImageF to_float(const Image& src);
Image to_u8(const ImageF& src);

// Copy of the sub-rectangle r (which must lie inside src).
template <class T>
ImageT<T> crop(const ImageT<T>& src, const Rect& r);
// crop's way back: src written into dst with its top-left pixel at (x, y) (src must lie inside
// dst, with dst's channel count).
template <class T>
void place(const ImageT<T>& src, ImageT<T>& dst, int x, int y);

}  // namespace fswap
