#include "imaging/image.h"

#include <algorithm>
#include <cmath>

#include "core/status.h"

namespace fswap {

Rect intersect(const Rect& a, const Rect& b) {
  const int x0 = std::max(a.x, b.x);
  const int y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width);
  const int y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return Rect{x0, y0, 0, 0};
  return Rect{x0, y0, x1 - x0, y1 - y0};
}

ImageF to_float(const Image& src) {
  ImageF dst(src.width, src.height, src.channels);
  const std::size_t n = src.pixels.size();
  const std::uint8_t* s = src.pixels.data();
  float* d = dst.pixels.data();
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]);
  return dst;
}

Image to_u8(const ImageF& src) {
  Image dst(src.width, src.height, src.channels);
  const std::size_t n = src.pixels.size();
  const float* s = src.pixels.data();
  std::uint8_t* d = dst.pixels.data();
  for (std::size_t i = 0; i < n; ++i) {
    // Written so that NaN maps to 0 and the conversion below is always defined.
    float v = s[i] + 0.5f;
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    d[i] = static_cast<std::uint8_t>(v);
  }
  return dst;
}

template <class T>
ImageT<T> crop(const ImageT<T>& src, const Rect& r) {
  FSWAP_CHECK(r.x >= 0 && r.y >= 0 && r.width >= 0 && r.height >= 0 && r.x + r.width <= src.width &&
                  r.y + r.height <= src.height,
              "crop rectangle must lie inside the image");
  ImageT<T> dst(r.width, r.height, src.channels);
  const std::size_t row_len = static_cast<std::size_t>(r.width) * src.channels;
  for (int y = 0; y < r.height; ++y) {
    const T* s = src.row(r.y + y) + static_cast<std::size_t>(r.x) * src.channels;
    std::copy(s, s + row_len, dst.row(y));
  }
  return dst;
}

template ImageT<std::uint8_t> crop(const ImageT<std::uint8_t>&, const Rect&);
template ImageT<float> crop(const ImageT<float>&, const Rect&);

template <class T>
void place(const ImageT<T>& src, ImageT<T>& dst, int x, int y) {
  FSWAP_CHECK(src.channels == dst.channels, "place: src and dst must have the same channel count");
  FSWAP_CHECK(x >= 0 && y >= 0 && x + src.width <= dst.width && y + src.height <= dst.height,
              "place: src must lie inside dst");
  const std::size_t row_len = static_cast<std::size_t>(src.width) * src.channels;
  for (int r = 0; r < src.height; ++r)
    std::copy_n(src.row(r), row_len, dst.row(y + r) + static_cast<std::size_t>(x) * dst.channels);
}

template void place(const ImageT<std::uint8_t>&, ImageT<std::uint8_t>&, int, int);
template void place(const ImageT<float>&, ImageT<float>&, int, int);

}  // namespace fswap
