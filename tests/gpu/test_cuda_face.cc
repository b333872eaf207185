// The face pipeline on the native engine's CUDA backend, on a real photo held in memory:
// detection, landmarks and embeddings agree with the CPU backend, and an inswapper_128 swap
// (replica weights, a fixed source identity) pastes back the same pixels. The face processors'
// device path (the frame kept on the GPU: face/device_face.h) gives the host path's frame.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "core/npy.h"
#include "face/analyser.h"
#include "face/device_face.h"
#include "face/enhancer.h"
#include "face/swapper.h"
#include "gpu/gpu_env.h"
#include "runtime/engines/native_engine.h"

namespace fswap {
namespace {

Result<Image> photo() {
  FSWAP_ASSIGN_OR_RETURN(Tensor t, read_npy(test::gpu_env("FSWAP_GPU_PHOTO")));
  if (t.dtype() != DType::kUInt8 || t.shape().size() != 3 || t.shape()[2] != 3)
    return invalid_input("FSWAP_GPU_PHOTO must be uint8 [H, W, 3]");
  Image img(static_cast<int>(t.shape()[1]), static_cast<int>(t.shape()[0]), 3);
  std::memcpy(img.pixels.data(), t.raw(), img.pixels.size());
  return img;
}

float box_iou(const FaceBox& a, const FaceBox& b) {
  const FaceBox i{std::max(a.x1, b.x1), std::max(a.y1, b.y1), std::min(a.x2, b.x2), std::min(a.y2, b.y2)};
  return i.area() / (a.area() + b.area() - i.area());
}

double psnr(const Image& a, const Image& b) {
  double se = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = double(a.pixels[i]) - b.pixels[i];
    se += d * d;
  }
  const double mse = se / static_cast<double>(a.pixels.size());
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

struct Analysis {
  std::vector<Face> faces;
  Image swapped;
};

Result<Analysis> analyse_and_swap(const SessionOptions& session, const Image& image) {
  NativeEngine engine;
  AnalyserOptions options;
  options.models_dir = test::gpu_env("FSWAP_GPU_MODELS");
  options.session = session;
  FSWAP_ASSIGN_OR_RETURN(auto analyser, FaceAnalyser::load(engine, options));
  Analysis a;
  FSWAP_ASSIGN_OR_RETURN(a.faces, analyser->analyse(image, /*embed=*/true));
  if (a.faces.empty()) return no_face("no face in FSWAP_GPU_PHOTO");
  FSWAP_ASSIGN_OR_RETURN(FaceSwapperModelSpec spec, face_swapper_model_spec("inswapper_128"));
  FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<FaceSwapperModel> model,
                         FaceSwapperModel::load(engine, options.models_dir, spec, session));
  FSWAP_ASSIGN_OR_RETURN(FaceMasker masker, FaceMasker::load(engine, options.models_dir, FaceMaskOptions{}, session));
  FaceSwapperSource source;
  source.embedding.resize(512);
  for (std::size_t i = 0; i < source.embedding.size(); ++i) source.embedding[i] = std::sin(0.37f * static_cast<float>(i));
  FSWAP_ASSIGN_OR_RETURN(auto swapper,
                         FaceFusionFaceSwapper::create(std::move(model), source, std::move(masker), spec.size));
  a.swapped = image;
  FSWAP_RETURN_IF_ERROR(swapper->swap(a.swapped, a.faces[0], nullptr));
  return a;
}

TEST(CudaFace, AnalysisAndInswapperSwapMatchTheCpuBackend) {
  if (test::gpu_model("fr_detect").empty() || test::gpu_model("inswapper_128").empty())
    GTEST_SKIP() << "fr_detect or inswapper_128 not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  auto cpu = analyse_and_swap({}, *image);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  for (Precision p : {Precision::kFloat32, Precision::kFloat16}) {
    const char* name = p == Precision::kFloat16 ? "fp16" : "fp32";
    auto gpu = analyse_and_swap({.device = {DeviceKind::kCuda, 0}, .precision = p}, *image);
    ASSERT_TRUE(gpu.is_ok()) << name << ": " << gpu.status().to_string();
    ASSERT_EQ(gpu->faces.size(), cpu->faces.size()) << name;
    const Face& c = cpu->faces[0];
    const Face& g = gpu->faces[0];
    EXPECT_GT(box_iou(c.box, g.box), 0.98f) << name;
    float worst_px = 0;
    for (std::size_t i = 0; i < c.landmarks68.size(); ++i)
      worst_px = std::max(worst_px, std::hypot(c.landmarks68[i].x - g.landmarks68[i].x, c.landmarks68[i].y - g.landmarks68[i].y));
    EXPECT_LT(worst_px, 1.5f) << name;
    double dot = 0;
    for (std::size_t i = 0; i < c.embedding.size(); ++i) dot += double(c.embedding[i]) * g.embedding[i];
    EXPECT_GT(dot, 0.999) << name;
    const double same = psnr(cpu->swapped, gpu->swapped);
    const double changed = psnr(*image, gpu->swapped);
    EXPECT_GT(same, 40.0) << name;
    EXPECT_LT(changed, same) << name << ": the swap changed nothing";
    std::printf("face %s: %zu faces, box IoU %.4f, landmarks within %.3f px, embedding cosine %.5f, swap PSNR vs CPU %.1f dB (vs input %.1f dB)\n",
                name, gpu->faces.size(), box_iou(c.box, g.box), worst_px, dot, same, changed);
  }
}

// The swapper (inswapper_128, box mask) and the enhancer (gfpgan_1.4, blend 80) on the photo's
// first face, both on the GPU, the frame either on the host between steps or kept on the GPU.
TEST(CudaFace, FramesKeptOnTheGpuMatchTheHostPath) {
  if (test::gpu_model("fr_detect").empty() || test::gpu_model("inswapper_128").empty() ||
      test::gpu_model("gfpgan_1.4").empty())
    GTEST_SKIP() << "fr_detect, inswapper_128 or gfpgan_1.4 not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const SessionOptions session{.device = {DeviceKind::kCuda, 0}, .precision = Precision::kFloat16};
  const std::string dir = test::gpu_env("FSWAP_GPU_MODELS");
  NativeEngine engine;
  AnalyserOptions options;
  options.models_dir = dir;
  options.session = session;
  auto analyser = FaceAnalyser::load(engine, options);
  ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
  auto faces = (*analyser)->analyse(*image, /*embed=*/false);
  ASSERT_TRUE(faces.is_ok() && !faces->empty());
  const Face& face = (*faces)[0];

  auto spec = face_swapper_model_spec("inswapper_128");
  ASSERT_TRUE(spec.is_ok());
  auto model = FaceSwapperModel::load(engine, dir, *spec, session);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  auto masker = FaceMasker::load(engine, dir, FaceMaskOptions{}, session);
  ASSERT_TRUE(masker.is_ok());
  FaceSwapperSource source;
  source.embedding.resize(512);
  for (std::size_t i = 0; i < source.embedding.size(); ++i) source.embedding[i] = std::cos(0.21f * static_cast<float>(i));
  auto swapper = FaceFusionFaceSwapper::create(std::move(*model), source, std::move(*masker), spec->size);
  ASSERT_TRUE(swapper.is_ok()) << swapper.status().to_string();
  auto enhancer_model = FaceEnhancerModel::load(engine, dir, "gfpgan_1.4", session);
  ASSERT_TRUE(enhancer_model.is_ok()) << enhancer_model.status().to_string();
  FaceEnhancer enhancer(std::move(*enhancer_model), FaceEnhancerOptions{});

  DeviceWork* gpu = (*swapper)->device_work();
  ASSERT_NE(gpu, nullptr) << "the swapper should work on the GPU";
  ASSERT_EQ(enhancer.device_work(), gpu) << "the enhancer should work on the same GPU";

  Image host = *image;
  ASSERT_TRUE((*swapper)->swap(host, face, nullptr).is_ok());
  ASSERT_TRUE(enhancer.enhance(host, face, nullptr).is_ok());

  Image kept = *image;
  {
    std::optional<DeviceFrame> frame;
    {
      auto held = gpu->hold();
      auto up = DeviceFrame::upload(*gpu, kept);
      ASSERT_TRUE(up.is_ok()) << up.status().to_string();
      frame.emplace(std::move(*up));
      Status s = (*swapper)->swap_on_device(*frame, face, nullptr);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      s = enhancer.enhance_on_device(*frame, face, nullptr);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      auto copy = frame->start_download(kept);
      ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
      held.unlock();
      s = (*copy)->wait(kept.pixels.data());
      ASSERT_TRUE(s.is_ok()) << s.to_string();
    }
  }
  int worst = 0;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < host.pixels.size(); ++i) {
    const int d = std::abs(int(host.pixels[i]) - int(kept.pixels[i]));
    worst = std::max(worst, d);
    differing += d != 0;
  }
  const double same = psnr(host, kept);
  const double changed = psnr(*image, kept);
  std::printf("frames kept on the GPU vs the host path: PSNR %.1f dB, worst %d levels, %.4f%% of values differ "
              "(vs input %.1f dB)\n",
              same, worst, 100.0 * double(differing) / double(host.pixels.size()), changed);
  EXPECT_GT(same, 45.0);
  EXPECT_LT(changed, 40.0) << "the device path changed too little";
}

}  // namespace
}  // namespace fswap
