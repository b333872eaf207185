#include "face/model_input.h"

#include <algorithm>
#include <cmath>

#include "core/status.h"

namespace fswap {

Tensor image_to_nchw(const Image& image, float offset, float scale) {
  const int w = image.width, h = image.height, c = image.channels;
  Tensor t = Tensor::zeros(DType::kFloat32, {1, c, h, w});
  float* out = t.data<float>();
  const std::size_t plane = static_cast<std::size_t>(w) * h;
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* row = image.row(y);
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch)
        out[ch * plane + static_cast<std::size_t>(y) * w + x] = (row[x * c + ch] - offset) * scale;
  }
  return t;
}

ImageF nchw_to_image(const Tensor& output, float low, float high, bool round) {
  const Shape& s = output.shape();
  FSWAP_CHECK(s.size() == 4 && s[0] == 1 && s[1] == 3, "nchw_to_image: expected [1,3,H,W]");
  const int h = static_cast<int>(s[2]), w = static_cast<int>(s[3]);
  const std::size_t plane = static_cast<std::size_t>(w) * h;
  const float* v = output.data<float>();
  ImageF image(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const float u = (std::clamp(v[c * plane + static_cast<std::size_t>(y) * w + x], low, high) - low) / (high - low);
        image.at(x, y, c) = round ? std::nearbyint(u * 255.f) : u * 255.f;
      }
  return image;
}

Tensor image_to_nhwc(const Image& image, float offset, float scale) {
  Tensor t = Tensor::zeros(DType::kFloat32, {1, image.height, image.width, image.channels});
  float* out = t.data<float>();
  for (std::size_t i = 0; i < image.pixels.size(); ++i) out[i] = (image.pixels[i] - offset) * scale;
  return t;
}

}  // namespace fswap
