#include "face/model_input.h"

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

Tensor image_to_nhwc(const Image& image, float offset, float scale) {
  Tensor t = Tensor::zeros(DType::kFloat32, {1, image.height, image.width, image.channels});
  float* out = t.data<float>();
  for (std::size_t i = 0; i < image.pixels.size(); ++i) out[i] = (image.pixels[i] - offset) * scale;
  return t;
}

}  // namespace fswap
