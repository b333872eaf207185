// The CUDA imaging kernels (imaging/cuda/cuda_imaging.h) against the CPU functions they mirror,
// on random images of odd and video sizes in pitched device memory: uint8 within 1 level,
// floats within 1e-4 (relative above 1). NV12 ↔ RGB against the BT.601/709 formulas in double.
// The face model I/O bit for bit against face/model_input.h; paste_back against face/paste_back.h
// (and face_enhancer_blend) within 1 level, ≥ 99.9% of the region's values equal.
// Skips without a GPU. ImagingThroughput prints ms per 1080p and 4K frame, GPU (CUDA events,
// median after warm-up) and CPU (the host function, median), as table rows for gpu_run.sh.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "face/enhancer.h"
#include "face/model_input.h"
#include "face/paste_back.h"
#include "face/swapper_facefusion.h"
#include "imaging/blend.h"
#include "imaging/cuda/cuda_imaging.h"
#include "imaging/filter.h"
#include "imaging/transform.h"

namespace fswap::cuda_imaging {
namespace {

#define ASSERT_OK(expr)                            \
  do {                                             \
    const ::fswap::Status s_ = (expr);             \
    ASSERT_TRUE(s_.is_ok()) << s_.to_string();     \
  } while (0)

bool has_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}
#define SKIP_WITHOUT_GPU() \
  if (!has_gpu()) GTEST_SKIP() << "no CUDA device"

// A pitched device copy of an ImageT (cudaMallocPitch, so rows are padded as a decoder's are).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(int width, int height, int channels) {
    view_.width = width;
    view_.height = height;
    view_.channels = channels;
    void* p = nullptr;
    EXPECT_EQ(cudaMallocPitch(&p, &view_.pitch, std::max<std::size_t>(1, sizeof(T) * width * channels),
                              std::max(1, height)),
              cudaSuccess);
    view_.data = static_cast<T*>(p);
  }
  explicit DeviceBuffer(const ImageT<T>& image) : DeviceBuffer(image.width, image.height, image.channels) {
    upload(image);
  }
  ~DeviceBuffer() { cudaFree(view_.data); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  const DeviceView<T>& view() const { return view_; }
  void upload(const ImageT<T>& image) {
    const std::size_t row = sizeof(T) * image.width * image.channels;
    EXPECT_EQ(cudaMemcpy2D(view_.data, view_.pitch, image.pixels.data(), row, row, image.height, cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  ImageT<T> download() const {
    ImageT<T> out(view_.width, view_.height, view_.channels);
    const std::size_t row = sizeof(T) * out.width * out.channels;
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy2D(out.pixels.data(), row, view_.data, view_.pitch, row, out.height, cudaMemcpyDeviceToHost),
              cudaSuccess);
    return out;
  }

 private:
  DeviceView<T> view_;
};

// A contiguous device array of floats (a model's planar input or output).
class DeviceFloats {
 public:
  explicit DeviceFloats(std::size_t n) : n_(n) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<std::size_t>(1, n) * sizeof(float)), cudaSuccess);
    data_ = static_cast<float*>(p);
  }
  ~DeviceFloats() { cudaFree(data_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;

  float* data() const { return data_; }
  void upload(const float* host) {
    EXPECT_EQ(cudaMemcpy(data_, host, n_ * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<float> download() const {
    std::vector<float> out(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.data(), data_, n_ * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

 private:
  float* data_ = nullptr;
  std::size_t n_;
};

Image random_image(int w, int h, int c, unsigned seed) {
  Image img(w, h, c);
  std::mt19937 rng(seed);
  for (auto& v : img.pixels) v = static_cast<std::uint8_t>(rng() & 255);
  return img;
}

// Random values with some smooth structure, so blurs and warps see both noise and gradients.
ImageF random_float(int w, int h, int c, unsigned seed, float low = 0, float high = 1) {
  ImageF img(w, h, c);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(low, high);
  for (auto& v : img.pixels) v = u(rng);
  return img;
}

::testing::AssertionResult near_u8(const Image& gpu, const Image& cpu, int tolerance = 1) {
  if (gpu.width != cpu.width || gpu.height != cpu.height || gpu.channels != cpu.channels)
    return ::testing::AssertionFailure() << "shapes differ";
  int worst = 0;
  std::size_t at = 0, off = 0;
  for (std::size_t i = 0; i < gpu.pixels.size(); ++i) {
    const int d = std::abs(gpu.pixels[i] - cpu.pixels[i]);
    off += d != 0;
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  if (worst <= tolerance) return ::testing::AssertionSuccess() << off << " values differ by 1";
  const std::size_t px = at / gpu.channels;
  return ::testing::AssertionFailure() << "max |gpu − cpu| = " << worst << " at (" << px % gpu.width << ", "
                                       << px / gpu.width << ") channel " << at % gpu.channels << ": gpu "
                                       << int{gpu.pixels[at]} << ", cpu " << int{cpu.pixels[at]} << "; " << off
                                       << " values differ";
}

::testing::AssertionResult near_f(const ImageF& gpu, const ImageF& cpu, float tolerance = 1e-4f) {
  if (gpu.width != cpu.width || gpu.height != cpu.height || gpu.channels != cpu.channels)
    return ::testing::AssertionFailure() << "shapes differ";
  for (std::size_t i = 0; i < gpu.pixels.size(); ++i) {
    const float d = std::abs(gpu.pixels[i] - cpu.pixels[i]);
    if (!(d <= tolerance * std::max(1.0f, std::abs(cpu.pixels[i]))))
      return ::testing::AssertionFailure() << "value " << i << ": gpu " << gpu.pixels[i] << ", cpu " << cpu.pixels[i];
  }
  return ::testing::AssertionSuccess();
}

// A similarity like a face alignment's: rotation, scale, translation.
Affine similarity(double angle_deg, double scale, double tx, double ty) {
  const double a = angle_deg * M_PI / 180.0;
  return Affine{scale * std::cos(a), -scale * std::sin(a), tx, scale * std::sin(a), scale * std::cos(a), ty};
}

// Bit-for-bit equality of float arrays (NaN-free), naming the first difference.
::testing::AssertionResult same_floats(const std::vector<float>& gpu, const float* cpu, std::size_t n) {
  if (gpu.size() != n) return ::testing::AssertionFailure() << gpu.size() << " values, expected " << n;
  for (std::size_t i = 0; i < n; ++i)
    if (gpu[i] != cpu[i])
      return ::testing::AssertionFailure() << "value " << i << ": gpu " << gpu[i] << ", cpu " << cpu[i];
  return ::testing::AssertionSuccess();
}

// Inside `region`: every value within 1 level and at least `min_equal` of them exactly equal.
// Outside it: gpu equals `before` (the frame as it was) exactly.
::testing::AssertionResult pasted_like_cpu(const Image& gpu, const Image& cpu, const Image& before, const Rect& region,
                                           double min_equal = 0.999) {
  const int C = gpu.channels;
  std::size_t inside = 0, equal = 0;
  for (int y = 0; y < gpu.height; ++y)
    for (int x = 0; x < gpu.width; ++x)
      for (int c = 0; c < C; ++c) {
        const int g = gpu.at(x, y, c);
        const bool in_region = x >= region.x && x < region.x + region.width && y >= region.y &&
                               y < region.y + region.height;
        if (!in_region) {
          if (g != before.at(x, y, c))
            return ::testing::AssertionFailure() << "(" << x << ", " << y << ") outside the region changed";
          continue;
        }
        const int d = std::abs(g - cpu.at(x, y, c));
        if (d > 1)
          return ::testing::AssertionFailure() << "(" << x << ", " << y << ") channel " << c << ": gpu " << g
                                               << ", cpu " << int{cpu.at(x, y, c)};
        ++inside;
        equal += d == 0;
      }
  const double fraction = inside ? static_cast<double>(equal) / inside : 1.0;
  if (fraction < min_equal)
    return ::testing::AssertionFailure() << "only " << equal << " of " << inside << " values equal";
  return ::testing::AssertionSuccess() << equal << " of " << inside << " values equal";
}

TEST(CudaImaging, WarpAffineMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const Image frame = random_image(1001, 563, 3, 1);
  const ImageF mask = random_float(1001, 563, 1, 2);
  DeviceBuffer<std::uint8_t> d_frame(frame);
  DeviceBuffer<float> d_mask(mask);
  // An aligned crop (shrinking, reaching outside the frame), an enlarging warp and a shear.
  const Affine maps[] = {similarity(17, 0.31, -40, 30), similarity(-33, 2.7, -900, 200),
                         Affine{1.1, 0.3, -20.25, -0.2, 0.9, 15.5}};
  const int sizes[][2] = {{256, 256}, {1001, 563}, {640, 481}};
  for (const Border border : {Border::kConstant, Border::kReplicate}) {
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE("map " + std::to_string(i) + (border == Border::kConstant ? " constant" : " replicate"));
      DeviceBuffer<std::uint8_t> d_out(sizes[i][0], sizes[i][1], 3);
      ASSERT_OK(warp_affine(d_frame.view(), maps[i], d_out.view(), border, nullptr));
      EXPECT_TRUE(near_u8(d_out.download(), warp_affine(frame, maps[i], sizes[i][0], sizes[i][1], border)));
      DeviceBuffer<float> d_out_f(sizes[i][0], sizes[i][1], 1);
      ASSERT_OK(warp_affine(d_mask.view(), maps[i], d_out_f.view(), border, nullptr));
      EXPECT_TRUE(near_f(d_out_f.download(), warp_affine(mask, maps[i], sizes[i][0], sizes[i][1], border)));
    }
  }
}

TEST(CudaImaging, WarpAffineIntoWritesOnlyTheRegion) {
  SKIP_WITHOUT_GPU();
  // The paste-back direction: a 256² face warped into a frame, only within a box (partly outside).
  const Image face = random_image(256, 256, 3, 3);
  const Image frame = random_image(1920, 1080, 3, 4);
  const Affine face_to_frame = similarity(12, 1.9, 1500, 700);
  const Rect region{1480, 690, 600, 500};
  Image cpu = frame;
  warp_affine_into(face, face_to_frame, cpu, region, Border::kReplicate);
  DeviceBuffer<std::uint8_t> d_face(face), d_frame(frame);
  ASSERT_OK(warp_affine_into(d_face.view(), face_to_frame, d_frame.view(), region, Border::kReplicate, nullptr));
  EXPECT_TRUE(near_u8(d_frame.download(), cpu, 1));
  // A singular map zero-fills the region, as on the CPU.
  Image cpu_zero = frame;
  warp_affine_into(face, Affine{0, 0, 0, 0, 0, 0}, cpu_zero, region, Border::kReplicate);
  d_frame.upload(frame);
  ASSERT_OK(warp_affine_into(d_face.view(), Affine{0, 0, 0, 0, 0, 0}, d_frame.view(), region, Border::kReplicate,
                             nullptr));
  EXPECT_TRUE(near_u8(d_frame.download(), cpu_zero, 0));
}

TEST(CudaImaging, ResizeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int sw, sh, dw, dh;
  };
  const Case cases[] = {{1920, 1080, 1001, 563}, {3840, 2160, 1920, 1080}, {1001, 563, 1920, 1080},
                        {3840, 2160, 640, 360},  {1001, 563, 333, 900},    {1920, 1080, 128, 128}};
  unsigned seed = 10;
  for (const Case& c : cases) {
    const Image src = random_image(c.sw, c.sh, 3, ++seed);
    const ImageF src_f = random_float(c.sw, c.sh, 1, ++seed);
    DeviceBuffer<std::uint8_t> d_src(src), d_dst(c.dw, c.dh, 3);
    DeviceBuffer<float> d_src_f(src_f), d_dst_f(c.dw, c.dh, 1);
    for (const Interp interp : {Interp::kBilinear, Interp::kArea, Interp::kNearest}) {
      SCOPED_TRACE(std::to_string(c.sw) + "x" + std::to_string(c.sh) + " -> " + std::to_string(c.dw) + "x" +
                   std::to_string(c.dh) + " interp " + std::to_string(static_cast<int>(interp)));
      ASSERT_OK(resize(d_src.view(), d_dst.view(), interp, nullptr));
      EXPECT_TRUE(near_u8(d_dst.download(), resize(src, c.dw, c.dh, interp)));
      ASSERT_OK(resize(d_src_f.view(), d_dst_f.view(), interp, nullptr));
      EXPECT_TRUE(near_f(d_dst_f.download(), resize(src_f, c.dw, c.dh, interp)));
    }
  }
}

TEST(CudaImaging, GaussianBlurMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int w, h, c;
    float sigma;
  };
  // Includes images narrower than the kernel, where reflect-101 wraps more than once.
  const Case cases[] = {{1001, 563, 1, 3.0f}, {1001, 563, 1, 12.5f}, {1920, 1080, 1, 8.0f},
                        {257, 129, 3, 2.2f},  {5, 3, 1, 4.0f},       {1, 9, 1, 1.5f}};
  unsigned seed = 40;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h) + "x" + std::to_string(c.c) + " sigma " +
                 std::to_string(c.sigma));
    ImageF cpu = random_float(c.w, c.h, c.c, ++seed);
    DeviceBuffer<float> d_image(cpu), d_scratch(c.w, c.h, c.c);
    ASSERT_OK(gaussian_blur(d_image.view(), c.sigma, d_scratch.view(), nullptr));
    gaussian_blur(cpu, c.sigma);
    EXPECT_TRUE(near_f(d_image.download(), cpu));
  }
}

TEST(CudaImaging, AlphaBlendMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const Image frame = random_image(1920, 1080, 3, 50);
  const Image patch = random_image(301, 257, 3, 51);
  // Mask values beyond [0, 1] and NaN are clamped (NaN → 0) like the CPU's.
  ImageF mask = random_float(301, 257, 1, 52, -0.25f, 1.25f);
  mask.at(7, 9) = std::nanf("");
  DeviceBuffer<std::uint8_t> d_patch(patch);
  DeviceBuffer<float> d_mask(mask);
  const int positions[][2] = {{800, 400}, {-120, -37}, {1700, 900}, {3000, 10}};
  for (const auto& p : positions) {
    SCOPED_TRACE("at " + std::to_string(p[0]) + ", " + std::to_string(p[1]));
    Image cpu = frame;
    alpha_blend(cpu, patch, mask, p[0], p[1]);
    DeviceBuffer<std::uint8_t> d_frame(frame);
    ASSERT_OK(alpha_blend(d_frame.view(), d_patch.view(), d_mask.view(), p[0], p[1], nullptr));
    EXPECT_TRUE(near_u8(d_frame.download(), cpu));
  }
}

// ---- face model I/O and paste-back --------------------------------------------------------------

ToPlanar uniform_to_planar(float offset, float scale) {
  ToPlanar map;
  for (int c = 0; c < kMaxPlanarChannels; ++c) {
    map.offset[c] = offset;
    map.scale[c] = scale;
  }
  return map;
}

TEST(CudaImaging, PlanarFromImageEqualsImageToNchw) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int w, h, c;
    float offset, scale;
  };
  // The face models' normalisations: (v − 127.5)/127.5, v/255, (v − 127)/128; odd sizes, 1 channel.
  const Case cases[] = {
      {512, 512, 3, 127.5f, 1 / 127.5f}, {1001, 563, 3, 0.f, 1 / 255.f}, {257, 129, 1, 127.f, 1 / 128.f}};
  unsigned seed = 90;
  for (const Case& k : cases) {
    SCOPED_TRACE(std::to_string(k.w) + "x" + std::to_string(k.h) + "x" + std::to_string(k.c));
    const Image image = random_image(k.w, k.h, k.c, ++seed);
    const Tensor cpu = image_to_nchw(image, k.offset, k.scale);
    DeviceBuffer<std::uint8_t> d_image(image);
    DeviceFloats d_planar(static_cast<std::size_t>(k.w) * k.h * k.c);
    ASSERT_OK(planar_from_image(d_image.view(), uniform_to_planar(k.offset, k.scale), d_planar.data(), nullptr));
    EXPECT_TRUE(same_floats(d_planar.download(), cpu.data<float>(), static_cast<std::size_t>(cpu.elements())));
  }
}

// Random model outputs [1, 3, h, w] reaching past [low, high], with exact midpoints
// (u · 255 = 127.5, where rounding half to even decides) every 97th value.
Tensor random_planar(int w, int h, float low, float high, unsigned seed) {
  Tensor planar = Tensor::zeros(DType::kFloat32, {1, 3, h, w});
  float* v = planar.data<float>();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(low - 0.3f, high + 0.3f);
  for (std::int64_t i = 0; i < planar.elements(); ++i) v[i] = u(rng);
  for (std::int64_t i = 0; i < planar.elements(); i += 97) v[i] = low + (high - low) * 0.5f;
  return planar;
}

TEST(CudaImaging, ImageFromPlanarEqualsNchwToImage) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int w, h;
    float low, high;
  };
  // The enhancers' [−1, 1] and [0, 1].
  const Case cases[] = {{512, 512, -1.f, 1.f}, {257, 129, 0.f, 1.f}, {1001, 563, -1.f, 1.f}};
  unsigned seed = 100;
  for (const Case& k : cases) {
    const Tensor planar = random_planar(k.w, k.h, k.low, k.high, ++seed);
    DeviceFloats d_planar(static_cast<std::size_t>(planar.elements()));
    d_planar.upload(planar.data<float>());
    DeviceBuffer<float> d_image(k.w, k.h, 3);
    for (const bool round : {true, false}) {
      SCOPED_TRACE(std::to_string(k.w) + "x" + std::to_string(k.h) + (round ? " rounded" : " not rounded"));
      const FromPlanar map{.low = k.low, .high = k.high, .round = round};
      ASSERT_OK(image_from_planar(d_planar.data(), map, d_image.view(), nullptr));
      const ImageF cpu = nchw_to_image(planar, k.low, k.high, round);
      EXPECT_TRUE(same_floats(d_image.download().pixels, cpu.pixels.data(), cpu.pixels.size()));
    }
  }
}

// The swappers' maps as swapper_facefusion.cc builds them for the device path.
TEST(CudaImaging, PlanarMapsMatchTheSwappers) {
  SKIP_WITHOUT_GPU();
  for (const char* name : {"inswapper_128", "hyperswap_1a_256", "simswap_256"}) {
    SCOPED_TRACE(name);
    const Result<FaceSwapperModelSpec> spec = face_swapper_model_spec(name);
    ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
    const int size = spec->size;
    ToPlanar in{.pre_scale = 1 / 255.f};
    FromPlanar out;
    for (int c = 0; c < 3; ++c) {
      in.offset[c] = spec->mean[c];
      in.scale[c] = 1 / spec->std[c];
      out.gain[c] = spec->denormalize_output ? spec->std[c] : 1.f;
      out.bias[c] = spec->denormalize_output ? spec->mean[c] : 0.f;
    }
    // Input: v · (1/255) instead of v / 255, so within a few float ulps (values up to ~2.7).
    const Image crop = random_image(size, size, 3, 120);
    const Tensor cpu_in = face_swapper_target_tensor({crop}, *spec);
    DeviceBuffer<std::uint8_t> d_crop(crop);
    DeviceFloats d_in(static_cast<std::size_t>(cpu_in.elements()));
    ASSERT_OK(planar_from_image(d_crop.view(), in, d_in.data(), nullptr));
    const std::vector<float> gpu_in = d_in.download();
    float worst = 0;
    const float* want = cpu_in.data<float>();
    for (std::size_t i = 0; i < gpu_in.size(); ++i) worst = std::max(worst, std::abs(gpu_in[i] - want[i]));
    EXPECT_LE(worst, 2e-6f);
    // Output: the same operations, bit for bit.
    const Tensor planar = random_planar(size, size, -1.f, 1.f, 121);
    DeviceFloats d_out(static_cast<std::size_t>(planar.elements()));
    d_out.upload(planar.data<float>());
    DeviceBuffer<float> d_face(size, size, 3);
    ASSERT_OK(image_from_planar(d_out.data(), out, d_face.view(), nullptr));
    const ImageF cpu_out = face_swapper_output_to_crop(planar, 0, *spec);
    EXPECT_TRUE(same_floats(d_face.download().pixels, cpu_out.pixels.data(), cpu_out.pixels.size()));
  }
}

// The CPU's face enhancer path (enhancer.cc): paste_back into a copy, then blend with the frame.
Image cpu_paste_back(const Image& frame, const ImageF& crop, const ImageF& mask, const Affine& frame_to_crop,
                     float blend_percent) {
  Image pasted = frame;
  paste_back(pasted, crop, mask, frame_to_crop);
  Image out = frame;
  face_enhancer_blend(out, pasted, blend_percent, paste_rect(frame.width, frame.height, crop.width, crop.height,
                                                              frame_to_crop));
  return out;
}

TEST(CudaImaging, PasteBackMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const Image frame = random_image(1920, 1080, 3, 110);
  // A 512² crop with smooth structure and noise, values 0..255 as a model gives them.
  ImageF crop = random_float(512, 512, 3, 111, 0.f, 255.f);
  gaussian_blur(crop, 1.5f);
  const ImageF box_mask = create_box_mask(512, 512, 0.3f, {0, 0, 0, 0});
  // Values past [0, 1] are clamped.
  const ImageF wild_mask = random_float(512, 512, 1, 112, -0.25f, 1.25f);
  struct Case {
    const char* name;
    Affine crop_to_frame;
    const ImageF* mask;
  };
  // A rotated face shrunk into the frame, an enlarged one reaching past the top, one past the
  // bottom-right corner.
  const Case cases[] = {{"rotated, shrunk", similarity(17, 0.61, 700, 250), &box_mask},
                        {"rotated, enlarged", similarity(-23, 1.37, 300, 200), &wild_mask},
                        {"partly outside", similarity(31, 0.9, 1650, 780), &box_mask}};
  DeviceBuffer<float> d_crop(crop);
  for (const Case& k : cases) {
    const Affine frame_to_crop = *k.crop_to_frame.inverse();
    const Rect region = paste_rect(frame.width, frame.height, crop.width, crop.height, frame_to_crop);
    ASSERT_FALSE(region.empty());
    DeviceBuffer<float> d_mask(*k.mask);
    DeviceBuffer<std::uint8_t> d_frame(frame.width, frame.height, 3);
    // blend 1: paste_back alone; 0.8: FaceFusion's default enhancer blend; 0: the frame unchanged.
    for (const float blend_percent : {100.f, 80.f, 0.f}) {
      SCOPED_TRACE(std::string(k.name) + ", blend " + std::to_string(blend_percent));
      Image cpu = frame;
      if (blend_percent == 100.f) {
        paste_back(cpu, crop, *k.mask, frame_to_crop);
      } else {
        cpu = cpu_paste_back(frame, crop, *k.mask, frame_to_crop, blend_percent);
      }
      d_frame.upload(frame);
      ASSERT_OK(paste_back(d_frame.view(), d_crop.view(), d_mask.view(), frame_to_crop, region, blend_percent / 100.f,
                           nullptr));
      const Image gpu = d_frame.download();
      EXPECT_TRUE(pasted_like_cpu(gpu, cpu, frame, region));
      if (blend_percent == 0.f) {
        EXPECT_TRUE(near_u8(gpu, frame, 0));
      }
    }
  }
  // A crop entirely outside the frame: paste_rect is empty and nothing changes.
  const Affine away = *similarity(0, 1, 2500, 100).inverse();
  const Rect none = paste_rect(frame.width, frame.height, crop.width, crop.height, away);
  EXPECT_TRUE(none.empty());
  DeviceBuffer<std::uint8_t> d_frame(frame);
  DeviceBuffer<float> d_mask(box_mask);
  ASSERT_OK(paste_back(d_frame.view(), d_crop.view(), d_mask.view(), away, none, 1.f, nullptr));
  EXPECT_TRUE(near_u8(d_frame.download(), frame, 0));
}

// ---- NV12: the reference formulas in double ----------------------------------------------------

struct Nv12Host {
  int width, height;
  std::vector<std::uint8_t> y, uv;  // tightly packed: width, 2·ceil(width/2)
  int chroma_w() const { return (width + 1) / 2; }
};

struct Matrix {
  double kr, kg, kb, y_offset, y_scale, c_scale;
};
Matrix reference_matrix(YuvFormat f) {
  const bool bt709 = f.matrix == YuvMatrix::kBt709;
  const double kr = bt709 ? 0.2126 : 0.299, kb = bt709 ? 0.0722 : 0.114;
  return f.full_range ? Matrix{kr, 1 - kr - kb, kb, 0, 1, 1} : Matrix{kr, 1 - kr - kb, kb, 16, 219.0 / 255, 224.0 / 255};
}
std::uint8_t round_u8(double v) { return static_cast<std::uint8_t>(std::floor(std::clamp(v, 0.0, 255.0) + 0.5)); }

Image reference_nv12_to_rgb(const Nv12Host& n, YuvFormat f) {
  const Matrix m = reference_matrix(f);
  Image rgb(n.width, n.height, 3);
  for (int y = 0; y < n.height; ++y)
    for (int x = 0; x < n.width; ++x) {
      const double luma = (n.y[static_cast<std::size_t>(y) * n.width + x] - m.y_offset) / m.y_scale;
      const std::uint8_t* uv = &n.uv[(static_cast<std::size_t>(y / 2) * n.chroma_w() + x / 2) * 2];
      const double pb = (uv[0] - 128.0) / m.c_scale, pr = (uv[1] - 128.0) / m.c_scale;
      const double r = luma + 2 * (1 - m.kr) * pr, b = luma + 2 * (1 - m.kb) * pb;
      rgb.at(x, y, 0) = round_u8(r);
      rgb.at(x, y, 1) = round_u8((luma - m.kr * r - m.kb * b) / m.kg);
      rgb.at(x, y, 2) = round_u8(b);
    }
  return rgb;
}

Nv12Host reference_rgb_to_nv12(const Image& rgb, YuvFormat f) {
  const Matrix m = reference_matrix(f);
  Nv12Host n{rgb.width, rgb.height, {}, {}};
  n.y.resize(static_cast<std::size_t>(rgb.width) * rgb.height);
  n.uv.resize(static_cast<std::size_t>(n.chroma_w()) * ((rgb.height + 1) / 2) * 2);
  auto luma = [&](double r, double g, double b) { return m.kr * r + m.kg * g + m.kb * b; };
  for (int y = 0; y < rgb.height; ++y)
    for (int x = 0; x < rgb.width; ++x)
      n.y[static_cast<std::size_t>(y) * rgb.width + x] =
          round_u8(m.y_offset + m.y_scale * luma(rgb.at(x, y, 0), rgb.at(x, y, 1), rgb.at(x, y, 2)));
  for (int by = 0; by < (rgb.height + 1) / 2; ++by)
    for (int bx = 0; bx < n.chroma_w(); ++bx) {
      double s[3] = {0, 0, 0};
      int count = 0;
      for (int y = 2 * by; y < std::min(2 * by + 2, rgb.height); ++y)
        for (int x = 2 * bx; x < std::min(2 * bx + 2, rgb.width); ++x, ++count)
          for (int c = 0; c < 3; ++c) s[c] += rgb.at(x, y, c);
      const double r = s[0] / count, g = s[1] / count, b = s[2] / count, l = luma(r, g, b);
      std::uint8_t* uv = &n.uv[(static_cast<std::size_t>(by) * n.chroma_w() + bx) * 2];
      uv[0] = round_u8(128 + m.c_scale * (b - l) / (2 * (1 - m.kb)));
      uv[1] = round_u8(128 + m.c_scale * (r - l) / (2 * (1 - m.kr)));
    }
  return n;
}

Image plane(int w, int h, int c, const std::vector<std::uint8_t>& pixels) {
  Image img(w, h, c);
  img.pixels = pixels;
  return img;
}

// Device NV12 planes held as two 1-channel / 2-channel uint8 buffers.
struct DeviceNv12 {
  DeviceBuffer<std::uint8_t> y, uv;
  DeviceNv12(int w, int h) : y(w, h, 1), uv((w + 1) / 2, (h + 1) / 2, 2) {}
  Nv12View view() const { return {y.view().data, y.view().pitch, uv.view().data, uv.view().pitch, y.view().width, y.view().height}; }
  void upload(const Nv12Host& n) {
    Image yi(n.width, n.height, 1), uvi(n.chroma_w(), (n.height + 1) / 2, 2);
    yi.pixels = n.y;
    uvi.pixels = n.uv;
    y.upload(yi);
    uv.upload(uvi);
  }
  Nv12Host download() const {
    const Image yi = y.download(), uvi = uv.download();
    return {yi.width, yi.height, yi.pixels, uvi.pixels};
  }
};

const int kVideoSizes[][2] = {{1001, 563}, {1920, 1080}, {3840, 2160}};
const YuvFormat kFormats[] = {{YuvMatrix::kBt601, false}, {YuvMatrix::kBt709, false}, {YuvMatrix::kBt709, true}};

TEST(CudaImaging, Nv12ToRgbMatchesTheMatrix) {
  SKIP_WITHOUT_GPU();
  unsigned seed = 60;
  for (const auto& s : kVideoSizes) {
    const Image y = random_image(s[0], s[1], 1, ++seed), uv = random_image((s[0] + 1) / 2, (s[1] + 1) / 2, 2, ++seed);
    const Nv12Host host{s[0], s[1], y.pixels, uv.pixels};
    DeviceNv12 d_nv12(s[0], s[1]);
    d_nv12.upload(host);
    DeviceBuffer<std::uint8_t> d_rgb(s[0], s[1], 3);
    for (const YuvFormat f : kFormats) {
      SCOPED_TRACE(std::to_string(s[0]) + "x" + std::to_string(s[1]) + (f.matrix == YuvMatrix::kBt709 ? " 709" : " 601") +
                   (f.full_range ? " full" : " limited"));
      ASSERT_OK(nv12_to_rgb(d_nv12.view(), d_rgb.view(), f, nullptr));
      EXPECT_TRUE(near_u8(d_rgb.download(), reference_nv12_to_rgb(host, f)));
    }
  }
}

TEST(CudaImaging, RgbToNv12MatchesTheMatrixAndRoundTrips) {
  SKIP_WITHOUT_GPU();
  unsigned seed = 70;
  for (const auto& s : kVideoSizes) {
    const Image rgb = random_image(s[0], s[1], 3, ++seed);
    DeviceBuffer<std::uint8_t> d_rgb(rgb), d_back(s[0], s[1], 3);
    DeviceNv12 d_nv12(s[0], s[1]);
    for (const YuvFormat f : kFormats) {
      SCOPED_TRACE(std::to_string(s[0]) + "x" + std::to_string(s[1]) + (f.matrix == YuvMatrix::kBt709 ? " 709" : " 601") +
                   (f.full_range ? " full" : " limited"));
      ASSERT_OK(rgb_to_nv12(d_rgb.view(), d_nv12.view(), f, nullptr));
      const Nv12Host gpu = d_nv12.download(), ref = reference_rgb_to_nv12(rgb, f);
      EXPECT_TRUE(near_u8(plane(s[0], s[1], 1, gpu.y), plane(s[0], s[1], 1, ref.y)));
      EXPECT_TRUE(near_u8(plane(gpu.chroma_w(), (s[1] + 1) / 2, 2, gpu.uv), plane(ref.chroma_w(), (s[1] + 1) / 2, 2, ref.uv)));
      // And back: the GPU's own NV12 through the GPU decode matches the reference decode.
      ASSERT_OK(nv12_to_rgb(d_nv12.view(), d_back.view(), f, nullptr));
      EXPECT_TRUE(near_u8(d_back.download(), reference_nv12_to_rgb(gpu, f)));
    }
  }
}

TEST(CudaImaging, DefaultFormatFollowsTheCpuPath) {
  EXPECT_EQ(default_yuv_format(1080).matrix, YuvMatrix::kBt709);
  EXPECT_EQ(default_yuv_format(720).matrix, YuvMatrix::kBt709);
  EXPECT_EQ(default_yuv_format(576).matrix, YuvMatrix::kBt601);
  EXPECT_FALSE(default_yuv_format(2160).full_range);
}

TEST(CudaImaging, RejectsMismatchedViews) {
  DeviceImage rgb{reinterpret_cast<std::uint8_t*>(16), 64, 32, 3, 64 * 3};
  DeviceImage gray{reinterpret_cast<std::uint8_t*>(16), 64, 32, 1, 64};
  DeviceImage short_pitch{reinterpret_cast<std::uint8_t*>(16), 64, 32, 3, 100};
  DeviceImageF mask{reinterpret_cast<float*>(16), 10, 10, 1, 40};
  EXPECT_EQ(warp_affine(rgb, Affine{}, gray, Border::kReplicate, nullptr).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(resize(short_pitch, rgb, Interp::kBilinear, nullptr).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(alpha_blend(rgb, rgb, mask, 0, 0, nullptr).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(gaussian_blur(mask, 200.0f, mask, nullptr).code(), StatusCode::kUnsupported);
  const Nv12View nv12{reinterpret_cast<std::uint8_t*>(16), 64, reinterpret_cast<std::uint8_t*>(16), 64, 63, 32};
  EXPECT_EQ(nv12_to_rgb(nv12, rgb, default_yuv_format(32), nullptr).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(planar_from_image(rgb, ToPlanar{}, nullptr, nullptr).code(), StatusCode::kInvalidInput);
  const DeviceImageF crop{reinterpret_cast<float*>(16), 10, 10, 3, 120};
  EXPECT_EQ(image_from_planar(reinterpret_cast<float*>(16), FromPlanar{.low = 1.f, .high = 1.f}, crop, nullptr).code(),
            StatusCode::kInvalidInput);
  const Rect all{0, 0, 64, 32};
  // A 3-channel mask, blend past 1, a 1-channel frame under a 3-channel crop, 5 channels.
  EXPECT_EQ(paste_back(rgb, crop, crop, Affine{}, all, 1.f, nullptr).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(paste_back(rgb, crop, mask, Affine{}, all, 1.5f, nullptr).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(paste_back(gray, crop, mask, Affine{}, all, 1.f, nullptr).code(), StatusCode::kInvalidInput);
  const DeviceImage five{reinterpret_cast<std::uint8_t*>(16), 64, 32, 5, 64 * 5};
  const DeviceImageF crop5{reinterpret_cast<float*>(16), 10, 10, 5, 200};
  EXPECT_EQ(paste_back(five, crop5, mask, Affine{}, all, 1.f, nullptr).code(), StatusCode::kUnsupported);
}

// ---- throughput --------------------------------------------------------------------------------

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ms per call: GPU by CUDA events around each call after warm-up; CPU by the host clock.
double gpu_ms(const std::function<Status()>& call) {
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(call().is_ok());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> ms;
  for (int i = 0; i < 30; ++i) {
    cudaEventRecord(start, nullptr);
    EXPECT_TRUE(call().is_ok());
    cudaEventRecord(stop, nullptr);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return median(ms);
}

double cpu_ms(const std::function<void()>& call) {
  call();
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(ms);
}

void print_row(const char* kernel, int w, int h, double gpu, double cpu) {
  if (cpu > 0)
    std::printf("| imaging %s | %dx%d | %.3f | %.2f | %.0fx |\n", kernel, w, h, gpu, cpu, cpu / gpu);
  else
    std::printf("| imaging %s | %dx%d | %.3f | – | – |\n", kernel, w, h, gpu);
}

TEST(CudaImaging, ImagingThroughput) {
  SKIP_WITHOUT_GPU();
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("imaging throughput on %s: ms per frame, GPU median of 30 (CUDA events), CPU median of 5\n", prop.name);
  std::printf("| kernel | frame | GPU ms | CPU ms | CPU/GPU |\n|---|---|---|---|---|\n");
  for (const auto& s : {std::array<int, 2>{1920, 1080}, std::array<int, 2>{3840, 2160}}) {
    const int w = s[0], h = s[1];
    Image frame = random_image(w, h, 3, 80);
    const Image layer = random_image(w, h, 3, 81);
    ImageF mask = random_float(w, h, 1, 82);
    DeviceBuffer<std::uint8_t> d_frame(frame), d_layer(layer), d_out(w, h, 3), d_half(w / 2, h / 2, 3);
    DeviceBuffer<float> d_mask(mask), d_scratch(w, h, 1);
    DeviceNv12 d_nv12(w, h);
    const Affine rot = similarity(3, 1.02, -10, 5);
    print_row("warp_affine rgb", w, h,
              gpu_ms([&] { return warp_affine(d_frame.view(), rot, d_out.view(), Border::kReplicate, nullptr); }),
              cpu_ms([&] { (void)warp_affine(frame, rot, w, h, Border::kReplicate); }));
    print_row("resize bilinear to half", w, h,
              gpu_ms([&] { return resize(d_frame.view(), d_half.view(), Interp::kBilinear, nullptr); }),
              cpu_ms([&] { (void)resize(frame, w / 2, h / 2, Interp::kBilinear); }));
    print_row("resize area to half", w, h,
              gpu_ms([&] { return resize(d_frame.view(), d_half.view(), Interp::kArea, nullptr); }),
              cpu_ms([&] { (void)resize(frame, w / 2, h / 2, Interp::kArea); }));
    print_row("gaussian_blur mask sigma 8", w, h,
              gpu_ms([&] { return gaussian_blur(d_mask.view(), 8.0f, d_scratch.view(), nullptr); }),
              cpu_ms([&] { gaussian_blur(mask, 8.0f); }));
    print_row("alpha_blend full frame", w, h,
              gpu_ms([&] { return alpha_blend(d_frame.view(), d_layer.view(), d_mask.view(), 0, 0, nullptr); }),
              cpu_ms([&] { alpha_blend(frame, layer, mask, 0, 0); }));
    // A 512² face crop pasted back at a tilt (its size grows with the frame's): paste_back alone
    // (blend 1), and with the face enhancer's 80% blend, which on the CPU pastes into a copy of
    // the frame and blends that back (enhancer.cc).
    const ImageF crop = random_float(512, 512, 3, 83, 0.f, 255.f);
    const ImageF box = create_box_mask(512, 512, 0.3f, {0, 0, 0, 0});
    const Affine frame_to_crop = *similarity(11, 0.35 * h / 512.0, w * 0.4, h * 0.3).inverse();
    const Rect region = paste_rect(w, h, 512, 512, frame_to_crop);
    DeviceBuffer<float> d_crop(crop), d_box(box);
    Image pasted;
    print_row("paste_back 512² face", w, h,
              gpu_ms([&] {
                return paste_back(d_frame.view(), d_crop.view(), d_box.view(), frame_to_crop, region, 1.f, nullptr);
              }),
              cpu_ms([&] { paste_back(frame, crop, box, frame_to_crop); }));
    print_row("paste_back 512² face + blend 80%", w, h,
              gpu_ms([&] {
                return paste_back(d_frame.view(), d_crop.view(), d_box.view(), frame_to_crop, region, 0.8f, nullptr);
              }),
              cpu_ms([&] {
                pasted = frame;
                paste_back(pasted, crop, box, frame_to_crop);
                face_enhancer_blend(frame, pasted, 80.f, region);
              }));
    const YuvFormat f = default_yuv_format(h);
    print_row("rgb_to_nv12 (no CPU twin)", w, h,
              gpu_ms([&] { return rgb_to_nv12(d_frame.view(), d_nv12.view(), f, nullptr); }), 0);
    print_row("nv12_to_rgb (no CPU twin)", w, h,
              gpu_ms([&] { return nv12_to_rgb(d_nv12.view(), d_out.view(), f, nullptr); }), 0);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace fswap::cuda_imaging
