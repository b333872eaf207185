// The face pipeline on the native engine's CUDA backend, on a real photo held in memory:
// detection, landmarks and embeddings agree with the CPU backend, and an inswapper_128 swap
// (replica weights, a fixed source identity) pastes back the same pixels. The face processors'
// device path (the frame kept on the GPU: face/device_face.h) gives the host path's frame: with
// the box mask exactly, with FaceFusion's content masks (occlusion, area, region:
// face/device_masks.h) within the stated tolerances, each mask step and each mask checked alone;
// the device steps on a face's region of the frame alone (face/face_region.h) give the whole
// frame's bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/npy.h"
#include "face/analyser.h"
#include "face/device_face.h"
#include "face/device_masks.h"
#include "face/enhancer.h"
#include "face/face_masker.h"
#include "face/face_region.h"
#include "face/model_input.h"
#include "face/swapper.h"
#include "gpu/gpu_env.h"
#include "support/drift_clip.h"
#include "imaging/transform.h"
#include "pipeline/swap_job.h"
#include "runtime/engines/native_engine.h"
#include "video/media.h"

namespace fswap {
namespace {

const SessionOptions kGpuSession{.device = {DeviceKind::kCuda, 0}, .precision = Precision::kFloat16};

Result<Image> photo() {
  FSWAP_ASSIGN_OR_RETURN(Tensor t, read_npy(test::gpu_env("FSWAP_GPU_PHOTO")));
  if (t.dtype() != DType::kUInt8 || t.shape().size() != 3 || t.shape()[2] != 3)
    return invalid_input("FSWAP_GPU_PHOTO must be uint8 [H, W, 3]");
  Image img(static_cast<int>(t.shape()[1]), static_cast<int>(t.shape()[0]), 3);
  std::memcpy(img.pixels.data(), t.raw(), img.pixels.size());
  return img;
}

// A job putting `source`'s face into `target` with FaceFusion's inswapper and gfpgan, the native
// engine on the GPU.
SwapJob gpu_swap_job(const std::string& source, const std::string& target, const std::string& output) {
  SwapJob job;
  job.sources = {source};
  job.target = target;
  job.output = output;
  job.engine = "native";
  job.analyser.models_dir = test::gpu_env("FSWAP_GPU_MODELS");
  job.analyser.session = kGpuSession;
  job.face_swapper_model = "inswapper_128";
  job.processors = {"face_swapper", "face_enhancer"};
  return job;
}

// Two runs' images of one job under a tight budget, frames on the host and on the GPU: the same
// but for fp16 rounding. The runs' models may take different convolution algorithms (the
// workspace each may use depends on the memory the frames hold), which moves a few pixels by a
// few levels; a wrong paste or region would move a face region by tens of levels.
void expect_same_but_fp16_rounding(const Image& host, const Image& kept, const std::string& budget) {
  ASSERT_EQ(host.pixels.size(), kept.pixels.size());
  int worst = 0;
  double sum = 0;
  for (std::size_t i = 0; i < host.pixels.size(); ++i) {
    const int d = std::abs(int(host.pixels[i]) - int(kept.pixels[i]));
    worst = std::max(worst, d);
    sum += d;
  }
  const double mean = sum / static_cast<double>(host.pixels.size());
  std::printf("  %s: host vs GPU frames worst %d levels, mean %.2e\n", budget.c_str(), worst, mean);
  EXPECT_LE(worst, 6) << budget;
  EXPECT_LT(mean, 0.05) << budget;
}

// The first of `models` missing from FSWAP_GPU_MODELS, "" when all are there (a test skips then).
std::string missing_model(std::initializer_list<const char*> models) {
  for (const char* m : models)
    if (test::gpu_model(m).empty()) return m;
  return "";
}

// The photo's first face, found by the analyser's default models on the GPU.
Result<Face> first_face_on_gpu(NativeEngine& engine, const Image& image) {
  AnalyserOptions options;
  options.models_dir = test::gpu_env("FSWAP_GPU_MODELS");
  options.session = kGpuSession;
  FSWAP_ASSIGN_OR_RETURN(auto analyser, FaceAnalyser::load(engine, options));
  FSWAP_ASSIGN_OR_RETURN(std::vector<Face> faces, analyser->analyse(image, /*embed=*/false));
  if (faces.empty()) return no_face("no face in FSWAP_GPU_PHOTO");
  return faces[0];
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
  if (const std::string m = missing_model({"fr_detect", "inswapper_128"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
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

// inswapper_128 (box mask, a fixed source embedding) and gfpgan_1.4 (FaceFusion's options) on the GPU.
struct SwapAndEnhance {
  std::unique_ptr<FaceSwapper> swapper;
  std::unique_ptr<FaceEnhancer> enhancer;
};
Result<SwapAndEnhance> swap_and_enhance_on_gpu(NativeEngine& engine, const std::string& dir) {
  FSWAP_ASSIGN_OR_RETURN(const auto spec, face_swapper_model_spec("inswapper_128"));
  FSWAP_ASSIGN_OR_RETURN(auto model, FaceSwapperModel::load(engine, dir, spec, kGpuSession));
  FSWAP_ASSIGN_OR_RETURN(auto masker, FaceMasker::load(engine, dir, FaceMaskOptions{}, kGpuSession));
  FaceSwapperSource source;
  source.embedding.resize(512);
  for (std::size_t i = 0; i < source.embedding.size(); ++i) source.embedding[i] = std::cos(0.21f * static_cast<float>(i));
  SwapAndEnhance out;
  FSWAP_ASSIGN_OR_RETURN(out.swapper, FaceFusionFaceSwapper::create(std::move(model), source, std::move(masker), spec.size));
  FSWAP_ASSIGN_OR_RETURN(auto enhancer_model, FaceEnhancerModel::load(engine, dir, "gfpgan_1.4", kGpuSession));
  out.enhancer = std::make_unique<FaceEnhancer>(std::move(enhancer_model), FaceEnhancerOptions{});
  return out;
}

// The swapper (inswapper_128, box mask) and the enhancer (gfpgan_1.4, blend 80) on the photo's
// first face, both on the GPU, the frame either on the host between steps or kept on the GPU.
TEST(CudaFace, FramesKeptOnTheGpuMatchTheHostPath) {
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string dir = test::gpu_env("FSWAP_GPU_MODELS");
  NativeEngine engine;
  auto found = first_face_on_gpu(engine, *image);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  const Face& face = *found;

  auto processors = swap_and_enhance_on_gpu(engine, dir);
  ASSERT_TRUE(processors.is_ok()) << processors.status().to_string();
  FaceSwapper* swapper = processors->swapper.get();
  FaceEnhancer& enhancer = *processors->enhancer;

  DeviceWork* gpu = swapper->device_work();
  ASSERT_NE(gpu, nullptr) << "the swapper should work on the GPU";
  ASSERT_EQ(enhancer.device_work(), gpu) << "the enhancer should work on the same GPU";

  Image host = *image;
  ASSERT_TRUE(swapper->swap(host, face, nullptr).is_ok());
  ASSERT_TRUE(enhancer.enhance(host, face, nullptr).is_ok());

  Image kept = *image;
  {
    std::optional<DeviceFrame> frame;
    {
      auto held = gpu->hold();
      auto up = DeviceFrame::upload(*gpu, kept);
      ASSERT_TRUE(up.is_ok()) << up.status().to_string();
      frame.emplace(std::move(*up));
      Status s = swapper->swap_on_device(*frame, face, nullptr);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      s = enhancer.enhance_on_device(*frame, face, nullptr);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      auto copy = frame->start_download(kept);
      ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
      held.unlock();
      s = (*copy)->wait(kept.pixels.data(), HostRows::contiguous(kept.pixels.size()));
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
  // The box mask is uploaded as the host computes it and every step is the host's twin: the same
  // bytes (as measured since the device path exists).
  EXPECT_EQ(worst, 0) << "box mask only: the device path must give the host path's frame exactly; " << differing
                      << " values differ";
  EXPECT_LT(changed, 40.0) << "the device path changed too little";
}

// The same swap + enhance on the GPU, the whole frame uploaded once, each face's region alone
// (face/face_region.h, the pipeline's way when the frame does not fit), and the part holding both
// regions with both steps on it (the pipeline's way otherwise): the same bytes, for the photo's
// face inside the frame and for it cut by the frame's left edge (its regions clipped).
TEST(CudaFace, RegionStepsMatchTheWholeFrame) {
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string dir = test::gpu_env("FSWAP_GPU_MODELS");
  NativeEngine engine;
  auto found = first_face_on_gpu(engine, *image);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();

  auto processors = swap_and_enhance_on_gpu(engine, dir);
  ASSERT_TRUE(processors.is_ok()) << processors.status().to_string();
  FaceSwapper* swapper = processors->swapper.get();
  FaceEnhancer& enhancer = *processors->enhancer;
  DeviceWork* gpu = swapper->device_work();
  ASSERT_NE(gpu, nullptr) << "the swapper should work on the GPU";
  ASSERT_EQ(enhancer.device_work(), gpu) << "the enhancer should work on the same GPU";
  const DeviceFaceStep swap = [&](const DeviceFrame& f, const Face& face) {
    return swapper->swap_on_device(f, face, nullptr);
  };
  const DeviceFaceStep enhance = [&](const DeviceFrame& f, const Face& face) {
    return enhancer.enhance_on_device(f, face, nullptr);
  };

  // The photo, and the photo from 40 pixels left of the face's centre on.
  const int cut = std::max(0, static_cast<int>(found->box.centre().x) - 40);
  const Rect rest{cut, 0, image->width - cut, image->height};
  const std::pair<Image, Face> frames[] = {{*image, *found},
                                           {crop(*image, rest), translated(*found, static_cast<float>(-cut), 0)}};
  for (const auto& [frame, face] : frames) {
    SCOPED_TRACE(frame.width == image->width ? "inside the frame" : "at the frame's left edge");
    const Rect swap_region = swapper->device_region(face, frame.width, frame.height);
    const Rect enhance_region = enhancer.device_region(face, frame.width, frame.height);
    ASSERT_FALSE(swap_region.empty());
    ASSERT_LT(static_cast<std::size_t>(enhance_region.width) * enhance_region.height,
              static_cast<std::size_t>(frame.width) * frame.height)
        << "the region should be a part of the frame";
    if (frame.width != image->width) {
      EXPECT_EQ(enhance_region.x, 0) << "the region should be clipped";
    }

    Image whole = frame;
    {
      std::optional<DeviceFrame> on_gpu;
      std::unique_ptr<DeviceWork::PendingDownload> copy;
      {
        auto held = gpu->hold();
        auto up = DeviceFrame::upload(*gpu, whole);
        ASSERT_TRUE(up.is_ok()) << up.status().to_string();
        on_gpu.emplace(std::move(*up));
        Status s = swap(*on_gpu, face);
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        s = enhance(*on_gpu, face);
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        auto started = on_gpu->start_download(whole);
        ASSERT_TRUE(started.is_ok()) << started.status().to_string();
        copy = std::move(*started);
      }
      const Status s = copy->wait(whole.pixels.data(), HostRows::contiguous(whole.pixels.size()));
      ASSERT_TRUE(s.is_ok()) << s.to_string();
    }
    Image by_region = frame;
    Status s = run_on_gpu_in_region(*gpu, by_region, swap_region, face, swap, nullptr);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    s = run_on_gpu_in_region(*gpu, by_region, enhance_region, face, enhance, nullptr);
    ASSERT_TRUE(s.is_ok()) << s.to_string();

    Image by_part = frame;
    const Rect part = part_holding({swap_region, enhance_region}, frame.width, frame.height);
    s = run_on_gpu_in_region(*gpu, by_part, part, face, [&](const DeviceFrame& f, const Face& at) {
      FSWAP_RETURN_IF_ERROR(swap(f, at));
      return enhance(f, at);
    }, nullptr);
    ASSERT_TRUE(s.is_ok()) << s.to_string();

    std::size_t differing = 0, part_differing = 0, changed = 0;
    for (std::size_t i = 0; i < whole.pixels.size(); ++i) {
      differing += whole.pixels[i] != by_region.pixels[i];
      part_differing += whole.pixels[i] != by_part.pixels[i];
      changed += whole.pixels[i] != frame.pixels[i];
    }
    std::printf("regions %dx%d (swap) and %dx%d (enhance), part %dx%d of a %dx%d frame: %zu values changed, %zu "
                "(regions) and %zu (part) differ from the whole frame's\n",
                swap_region.width, swap_region.height, enhance_region.width, enhance_region.height, part.width,
                part.height, frame.width, frame.height, changed, differing, part_differing);
    EXPECT_GT(changed, 10000u) << "the steps changed too little to compare";
    EXPECT_EQ(differing, 0u) << "the regions' steps must give the whole frame's bytes";
    EXPECT_EQ(part_differing, 0u) << "the steps on the part must give the whole frame's bytes";
  }
}

// ---- FaceFusion's content masks on the GPU -----------------------------------------------------------

namespace fs = std::filesystem;

constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f}, kImagenetStd = {0.229f, 0.224f, 0.225f};

// The mask models under FaceFusion's names in a folder of their own (scripts/gpu_run.sh writes the
// occluder replica as xseg.onnx): links to FSWAP_GPU_MODELS' files; "" when they are absent.
std::string mask_models_dir() {
  const std::string xseg = !test::gpu_model("xseg_1").empty() ? test::gpu_model("xseg_1") : test::gpu_model("xseg");
  const std::string bisenet = test::gpu_model("bisenet_resnet_34");
  if (xseg.empty() || bisenet.empty()) return "";
  const fs::path dir = fs::temp_directory_path() / ("fswap-gpu-masks-" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const auto& [name, target] : {std::pair{"xseg_1.onnx", xseg}, std::pair{"bisenet_resnet_34.onnx", bisenet}}) {
    fs::remove(dir / name);
    fs::create_symlink(fs::absolute(target), dir / name);
  }
  return dir.string();
}

// How a device mask (or tensor) differs from the host's: the largest difference and where, the
// mean difference, and the host's mean (a mask of all zeros or ones checks less).
struct Diff {
  double worst = 0, mean = 0, host_mean = 0;
  std::size_t at = 0;
  int width = 1;  // to name the worst as (x, y)

  std::string text() const {
    char buf[200];
    std::snprintf(buf, sizeof buf, "max |diff| %.3g at (%d, %d), mean |diff| %.3g, host mean %.4f", worst,
                  static_cast<int>(at % width), static_cast<int>(at / width), mean, host_mean);
    return buf;
  }
};

Diff diff_of(const float* host, const std::vector<float>& device, int width) {
  Diff d;
  d.width = width;
  for (std::size_t i = 0; i < device.size(); ++i) {
    const double e = std::abs(double(host[i]) - device[i]);
    if (e > d.worst) d.worst = e, d.at = i;
    d.mean += e;
    d.host_mean += host[i];
  }
  d.mean /= static_cast<double>(device.size());
  d.host_mean /= static_cast<double>(device.size());
  return d;
}

Result<std::vector<float>> download_floats(DeviceWork& gpu, const void* device, std::size_t count) {
  std::vector<float> v(count);
  FSWAP_RETURN_IF_ERROR(gpu.download(v.data(), device, count * sizeof(float)));
  return v;
}

ImageF random_mask(int size, unsigned seed, float low, float high) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(low, high);
  ImageF m(size, size, 1);
  for (float& v : m.pixels) v = u(rng);
  return m;
}

// A similarity that takes a face-sized part of the photo to a crop of `size` (any crop will do).
Affine some_crop(int size) {
  const double s = size / 220.0, r = 0.15;
  return {s * std::cos(r), -s * std::sin(r), -170 * s, s * std::sin(r), s * std::cos(r), -30 * s};
}

// Each device mask step against its host function on the same values (face/device_masks.h).
TEST(CudaFaceMasks, StepsMatchTheHostFunctions) {
  const std::string dir = mask_models_dir();
  if (dir.empty()) GTEST_SKIP() << "xseg (or xseg_1) or bisenet_resnet_34 not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  NativeEngine engine;
  auto occluder = FaceOccluder::load(engine, dir, "xseg_1", kGpuSession);
  ASSERT_TRUE(occluder.is_ok()) << occluder.status().to_string();
  DeviceWork* gpu = (*occluder)->device_work();
  ASSERT_NE(gpu, nullptr) << "xseg_1 should run on the GPU";
  std::optional<DeviceFrame> frame;  // declared before the hold: it frees itself under it
  auto held = gpu->hold();

  {  // The soft threshold: clip, OpenCV's Gaussian (σ 5, 41 taps), clip(0.5, 1) − 0.5, × 2.
    ImageF m = random_mask(128, 1, -0.2f, 1.2f);
    auto d = upload_mask(*gpu, m);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    ASSERT_TRUE(soft_threshold_on_device(*gpu, *d, 128).is_ok());
    auto got = download_floats(*gpu, d->data(), m.pixels.size());
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    soft_threshold_mask(m);
    const Diff e = diff_of(m.pixels.data(), *got, 128);
    std::printf("soft threshold 128: %s\n", e.text().c_str());
    EXPECT_EQ(e.worst, 0.0) << "soft threshold: " << e.text();
  }
  for (const auto& [from, to] : {std::pair{256, 128}, std::pair{256, 512}, std::pair{512, 128}}) {
    // A model's mask back to the crop: clip, bilinear resize, soft threshold.
    ImageF m = random_mask(from, from + to, -0.5f, 1.5f);
    auto d = upload_mask(*gpu, m);
    auto crop = gpu->allocate(static_cast<std::size_t>(to) * to * sizeof(float));
    ASSERT_TRUE(d.is_ok() && crop.is_ok());
    ASSERT_TRUE(model_mask_to_crop(*gpu, *d, from, *crop, to).is_ok());
    auto got = download_floats(*gpu, crop->data(), static_cast<std::size_t>(to) * to);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    for (float& v : m.pixels) v = std::clamp(v, 0.f, 1.f);
    ImageF want = resize(m, to, to, Interp::kBilinear);
    soft_threshold_mask(want);
    const Diff e = diff_of(want.pixels.data(), *got, to);
    std::printf("model mask %d → crop %d: %s\n", from, to, e.text().c_str());
    EXPECT_LT(e.worst, 1e-5) << from << " → " << to << ": " << e.text();
  }
  {  // The parser's argmax, ties frequent (scores on 4 levels): the first class wins, as numpy's.
    const int classes = 19, n = 64;
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> level(0, 3);
    std::vector<float> scores(static_cast<std::size_t>(classes) * n * n);
    for (float& v : scores) v = 0.5f * level(rng);
    auto d = upload_buffer(*gpu, scores.data(), scores.size() * sizeof(float));
    auto mask = gpu->allocate(static_cast<std::size_t>(n) * n * sizeof(float));
    ASSERT_TRUE(d.is_ok() && mask.is_ok());
    const std::vector<int> ids = {1, 2, 3, 10, 13};
    const DeviceTensor t{d->data(), DType::kFloat32, {1, classes, n, n}};
    ASSERT_TRUE(chosen_class_mask(*gpu, t, chosen_classes(ids).value(), *mask, n).is_ok());
    auto got = download_floats(*gpu, mask->data(), static_cast<std::size_t>(n) * n);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    std::vector<float> want(static_cast<std::size_t>(n) * n);
    for (std::size_t i = 0; i < want.size(); ++i) {
      int best = 0;
      for (int c = 1; c < classes; ++c)
        if (scores[c * want.size() + i] > scores[best * want.size() + i]) best = c;
      want[i] = std::find(ids.begin(), ids.end(), best) != ids.end() ? 1.f : 0.f;
    }
    const Diff e = diff_of(want.data(), *got, n);
    std::printf("chosen classes: %s\n", e.text().c_str());
    EXPECT_EQ(e.worst, 0.0) << "argmax: " << e.text();
  }
  auto up = DeviceFrame::upload(*gpu, *image);
  ASSERT_TRUE(up.is_ok()) << up.status().to_string();
  frame.emplace(std::move(*up));
  for (int size : {128, 256, 512}) {
    // The occluder's input: the crop, resize_linear_opencv to 256, BGR, v/255, NHWC.
    const Affine m = some_crop(size);
    auto input = occluder_input(*frame, m, size, 256);
    ASSERT_TRUE(input.is_ok()) << input.status().to_string();
    auto got = download_floats(*gpu, input->data(), 256 * 256 * 3);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    Image bgr = resize_linear_opencv(warp_affine(*image, m, size, size, Border::kReplicate), 256, 256);
    for (std::size_t i = 0; i + 2 < bgr.pixels.size(); i += 3) std::swap(bgr.pixels[i], bgr.pixels[i + 2]);
    const Tensor want = image_to_nhwc(bgr, 0.f, 1.f / 255.f);
    const Diff e = diff_of(want.data<float>(), *got, 256 * 3);
    std::printf("occluder input from a %d crop: %s\n", size, e.text().c_str());
    EXPECT_EQ(e.worst, 0.0) << "occluder input from a " << size << " crop (x counts values): " << e.text();
  }
  {  // The parser's input: the float crop resized to 512, (v/255 − mean)/std, planar.
    const ImageF crop = to_float(warp_affine(*image, some_crop(128), 128, 128, Border::kReplicate));
    auto d = upload_buffer(*gpu, crop.pixels.data(), crop.pixels.size() * sizeof(float));
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    auto input = parser_input(*gpu, *d, 128, 512, kImagenetMean, kImagenetStd);
    ASSERT_TRUE(input.is_ok()) << input.status().to_string();
    auto got = download_floats(*gpu, input->data(), 3 * 512 * 512);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    const ImageF resized = resize(crop, 512, 512, Interp::kBilinear);
    std::vector<float> want(got->size());
    const std::size_t plane = 512 * 512;
    for (int c = 0; c < 3; ++c)
      for (std::size_t i = 0; i < plane; ++i)
        want[c * plane + i] = (resized.pixels[i * 3 + c] / 255.f - kImagenetMean[c]) / kImagenetStd[c];
    const Diff e = diff_of(want.data(), *got, 512);
    std::printf("parser input: %s\n", e.text().c_str());
    // It multiplies by 1/255 and 1/std where the host divides: a few float roundings of ~2.6.
    EXPECT_LT(e.worst, 2e-6) << "parser input (y counts planes × 512 rows): " << e.text();
  }
}

// Tolerances of whole masks, device vs host, on the same crop and the same GPU models:
// occlusion and area: the same values (bit-identical steps; the same model outputs);
// region: the parser's input is a float rounding apart (see above), which may flip the argmax of
// a near tie: one flipped pixel of 512² moves a 128 mask by at most ~0.004 (bilinear weight
// 1/4, the Gaussian's centre 1/(2π·25), × 2).
constexpr double kOcclusionTolerance = 1e-6, kRegionTolerance = 0.02, kCombinedTolerance = 0.02;

// The photo's first face: the occluder and the parser alone, then FaceMasker with box, occlusion,
// area and region before and after a swap, the device twins against the host functions.
TEST(CudaFaceMasks, OccluderParserAndMaskerMatchTheHost) {
  const std::string dir = mask_models_dir();
  if (dir.empty()) GTEST_SKIP() << "xseg (or xseg_1) or bisenet_resnet_34 not in FSWAP_GPU_MODELS";
  if (const std::string m = missing_model({"fr_detect", "inswapper_128"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  NativeEngine engine;
  auto found = first_face_on_gpu(engine, *image);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  const Face& face = *found;
  auto spec = face_swapper_model_spec("inswapper_128");
  ASSERT_TRUE(spec.is_ok());
  const int size = spec->size;
  Affine frame_to_crop;
  const Image crop = face_swapper_crop(*image, face.landmarks5, *spec, size, &frame_to_crop);
  std::array<Point2f, 68> landmarks68;
  for (int i = 0; i < 68; ++i) landmarks68[i] = frame_to_crop.apply(face.landmarks68[i]);
  // The "swapped" crop for the masks after the swap: the target crop itself, as floats.
  const ImageF swapped = to_float(crop);
  const std::vector<int> region_ids = {1, 2, 3, 4, 5, 6, 10, 11, 12, 13};  // every region (the default)

  auto occluder = FaceOccluder::load(engine, dir, "xseg_1", kGpuSession);
  ASSERT_TRUE(occluder.is_ok()) << occluder.status().to_string();
  auto parser = FaceParser::load(engine, dir, "bisenet_resnet_34", kGpuSession);
  ASSERT_TRUE(parser.is_ok()) << parser.status().to_string();
  FaceMaskOptions mask_options;
  mask_options.types = {"box", "occlusion", "area", "region"};
  auto masker = FaceMasker::load(engine, dir, mask_options, kGpuSession);
  ASSERT_TRUE(masker.is_ok()) << masker.status().to_string();
  DeviceWork* gpu = (*occluder)->device_work();
  ASSERT_NE(gpu, nullptr) << "xseg_1 should run on the GPU";
  ASSERT_EQ((*parser)->device_work(), gpu) << "bisenet_resnet_34 should run on xseg_1's GPU";
  ASSERT_TRUE(masker->runs_on(*gpu)) << "the masker's models should run on the GPU";

  // The host's.
  auto host_occlusion = (*occluder)->mask(crop);
  ASSERT_TRUE(host_occlusion.is_ok()) << host_occlusion.status().to_string();
  auto host_region = (*parser)->region_mask(swapped, region_ids);
  ASSERT_TRUE(host_region.is_ok()) << host_region.status().to_string();
  auto host_mask = masker->before_swap(crop);
  ASSERT_TRUE(host_mask.is_ok()) << host_mask.status().to_string();
  ASSERT_TRUE(masker->after_swap(swapped, landmarks68, *host_mask).is_ok());

  std::optional<DeviceFrame> frame;  // declared before the hold: it frees itself under it
  auto held = gpu->hold();
  auto up = DeviceFrame::upload(*gpu, *image);
  ASSERT_TRUE(up.is_ok()) << up.status().to_string();
  frame.emplace(std::move(*up));
  auto swapped_on_gpu = upload_buffer(*gpu, swapped.pixels.data(), swapped.pixels.size() * sizeof(float));
  ASSERT_TRUE(swapped_on_gpu.is_ok()) << swapped_on_gpu.status().to_string();
  const std::size_t values = static_cast<std::size_t>(size) * size;
  auto occlusion = gpu->allocate(values * sizeof(float));
  auto region = gpu->allocate(values * sizeof(float));
  ASSERT_TRUE(occlusion.is_ok() && region.is_ok());
  Status s = (*occluder)->mask_on_device(*frame, frame_to_crop, size, *occlusion);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  s = (*parser)->region_mask_on_device(*gpu, *swapped_on_gpu, size, region_ids, *region);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto mask = masker->before_swap_on_device(*frame, frame_to_crop, size);
  ASSERT_TRUE(mask.is_ok()) << mask.status().to_string();
  s = masker->after_swap_on_device(*gpu, *swapped_on_gpu, size, landmarks68, *mask);
  ASSERT_TRUE(s.is_ok()) << s.to_string();

  const auto check = [&](const char* what, const ImageF& want, const DeviceBuffer& got_on_gpu, double tolerance) {
    auto got = download_floats(*gpu, got_on_gpu.data(), values);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    const Diff e = diff_of(want.pixels.data(), *got, size);
    std::printf("%s mask of the %d crop, device vs host: %s\n", what, size, e.text().c_str());
    EXPECT_LE(e.worst, tolerance) << what << " mask: " << e.text();
  };
  check("occlusion", *host_occlusion, *occlusion, kOcclusionTolerance);
  check("region", *host_region, *region, kRegionTolerance);
  check("box+occlusion+area+region", *host_mask, *mask, kCombinedTolerance);
}

// Swap (inswapper_128) with each content mask beside the box and with all of them, and enhance
// (gfpgan_1.4 with box and occlusion, as FaceFusion's enhancer) on the photo's first face, the frame
// on the host or kept on the GPU. Each processor starts from the same frame on both paths, so a
// check does not inherit the previous step's differences (a net spreads a changed input pixel
// over its receptive field). The replicas' random weights may threshold the occlusion or region
// mask to nothing, which leaves the frame as it was: the test says so (the area mask, drawn from
// the landmarks, always lets the swap through).
TEST(CudaFaceMasks, FramesKeptOnTheGpuWithContentMasksMatchTheHostPath) {
  const std::string dir = mask_models_dir();
  if (dir.empty()) GTEST_SKIP() << "xseg (or xseg_1) or bisenet_resnet_34 not in FSWAP_GPU_MODELS";
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string models = test::gpu_env("FSWAP_GPU_MODELS");
  NativeEngine engine;
  auto found = first_face_on_gpu(engine, *image);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  const Face& face = *found;

  // Runs `work` on the frame kept on the GPU: up, work, down.
  const auto on_gpu = [](DeviceWork& gpu, Image& rgb, const std::function<Status(const DeviceFrame&)>& work) -> Status {
    std::optional<DeviceFrame> frame;  // declared before the hold: it frees itself under it
    auto held = gpu.hold();
    FSWAP_ASSIGN_OR_RETURN(DeviceFrame up, DeviceFrame::upload(gpu, rgb));
    frame.emplace(std::move(up));
    FSWAP_RETURN_IF_ERROR(work(*frame));
    FSWAP_ASSIGN_OR_RETURN(auto copy, frame->start_download(rgb));
    held.unlock();
    return copy->wait(rgb.pixels.data(), HostRows::contiguous(rgb.pixels.size()));
  };
  // Device vs host: the worst level and the PSNR, printed with the change from the input.
  const auto compare = [](const std::string& what, const Image& before, const Image& host, const Image& kept) {
    int worst = 0;
    std::size_t differing = 0, worst_at = 0;
    for (std::size_t i = 0; i < host.pixels.size(); ++i) {
      const int d = std::abs(int(host.pixels[i]) - int(kept.pixels[i]));
      if (d > worst) worst = d, worst_at = i / 3;
      differing += d != 0;
    }
    const double changed = psnr(before, host);
    std::printf("%s, frame kept on the GPU vs the host path: PSNR %.1f dB, worst %d levels at (%d, %d), %.4f%% of "
                "values differ (host path vs its input %.1f dB%s)\n",
                what.c_str(), psnr(host, kept), worst, static_cast<int>(worst_at % host.width),
                static_cast<int>(worst_at / host.width), 100.0 * double(differing) / double(host.pixels.size()), changed,
                changed >= 99 ? ": the masks let nothing through, this compares less" : "");
    return std::pair{worst, psnr(host, kept)};
  };

  auto spec = face_swapper_model_spec("inswapper_128");
  ASSERT_TRUE(spec.is_ok());
  auto loaded = FaceSwapperModel::load(engine, models, *spec, kGpuSession);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  const std::shared_ptr<FaceSwapperModel> model = std::move(*loaded);
  FaceSwapperSource source;
  source.embedding.resize(512);
  for (std::size_t i = 0; i < source.embedding.size(); ++i) source.embedding[i] = std::cos(0.21f * static_cast<float>(i));
  // A combined mask value off by kCombinedTolerance moves a pasted value by at most 255 times that.
  const int swap_levels = static_cast<int>(std::ceil(255 * kCombinedTolerance)) + 1;
  Image host_swapped;
  for (const std::vector<std::string>& types : std::vector<std::vector<std::string>>{
           {"box", "area"}, {"box", "occlusion"}, {"box", "region"}, {"box", "occlusion", "area", "region"}}) {
    std::string what = "swap with";
    for (const auto& t : types) what += " " + t;
    SCOPED_TRACE(what);
    FaceMaskOptions mask_options;
    mask_options.types = types;
    auto masker = FaceMasker::load(engine, dir, mask_options, kGpuSession);
    ASSERT_TRUE(masker.is_ok()) << masker.status().to_string();
    auto swapper = FaceFusionFaceSwapper::create(model, source, std::move(*masker), spec->size);
    ASSERT_TRUE(swapper.is_ok()) << swapper.status().to_string();
    DeviceWork* gpu = (*swapper)->device_work();
    ASSERT_NE(gpu, nullptr) << what << ": the swapper should work on the GPU";
    host_swapped = *image;
    Image kept = *image;
    Status s = (*swapper)->swap(host_swapped, face, nullptr);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    s = on_gpu(*gpu, kept, [&](const DeviceFrame& frame) { return (*swapper)->swap_on_device(frame, face, nullptr); });
    ASSERT_TRUE(s.is_ok()) << "swap_on_device: " << s.to_string();
    const auto [worst, same] = compare(what, *image, host_swapped, kept);
    EXPECT_LE(worst, swap_levels) << what << ": device path vs host path";
    EXPECT_GT(same, 50.0) << what << ": device path vs host path";
    if (types.size() == 2 && types[1] == "area") {
      EXPECT_LT(psnr(*image, host_swapped), 40.0) << what << ": the area mask should let the swap through";
    }
  }

  auto enhancer_model = FaceEnhancerModel::load(engine, models, "gfpgan_1.4", kGpuSession);
  ASSERT_TRUE(enhancer_model.is_ok()) << enhancer_model.status().to_string();
  auto occluder = FaceOccluder::load(engine, dir, "xseg_1", kGpuSession);
  ASSERT_TRUE(occluder.is_ok()) << occluder.status().to_string();
  FaceEnhancer enhancer(std::move(*enhancer_model), FaceEnhancerOptions{}, std::move(*occluder));
  DeviceWork* gpu = enhancer.device_work();
  ASSERT_NE(gpu, nullptr) << "the enhancer with the occlusion mask should work on the GPU";
  Image host_enhanced = host_swapped, kept_enhanced = host_swapped;
  Status s = enhancer.enhance(host_enhanced, face, nullptr);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  s = on_gpu(*gpu, kept_enhanced, [&](const DeviceFrame& frame) { return enhancer.enhance_on_device(frame, face, nullptr); });
  ASSERT_TRUE(s.is_ok()) << "enhance_on_device: " << s.to_string();
  // Box and occlusion are the host's values (kOcclusionTolerance): at most a truncation's level.
  const auto [worst, same] = compare("enhance with box occlusion", host_swapped, host_enhanced, kept_enhanced);
  EXPECT_LE(worst, 1) << "enhance with box and occlusion masks: device path vs host path";
  EXPECT_GT(same, 60.0) << "enhance with box and occlusion masks: device path vs host path";
}

// One budget's two runs of a 4K swap + enhance job (run_budgets).
struct BudgetRuns {
  std::string budget;
  bool host_ran = false;   // the host frames' run succeeded (else it ran out of memory)
  long gpu_uploads = 0;    // the GPU frames' run's "upload" calls
  std::int64_t faces = 0;  // and the faces it swapped
};

// Swaps the photo (its PNG at photo_png) into the image at target_png with the swapper and the
// face enhancer, `selector` choosing the faces, at each budget twice: frames on the host, then on
// the GPU (auto). Checks that a host run fails only for lack of memory and that wherever it ran
// the GPU frames' run did too, with its image but for fp16 rounding.
std::vector<BudgetRuns> run_budgets(const std::string& photo_png, const std::string& target_png,
                                    std::initializer_list<const char*> budgets, SelectorMode selector) {
  std::vector<BudgetRuns> runs;
  for (const char* budget : budgets) {
    BudgetRuns r{budget};
    const auto run = [&](SwapJob::FramesOnGpu frames) -> Result<Image> {
      SwapJob job = gpu_swap_job(photo_png, target_png, ::testing::TempDir() + "/budget_out.png");
      job.selector.mode = selector;
      job.analyser.session.vram_budget = budget;
      job.frames_on_gpu = frames;
      FSWAP_ASSIGN_OR_RETURN(SwapSummary summary, run_swap(job));
      r.gpu_uploads = 0;
      for (const TimeLedger::Entry& e : summary.stages)
        if (e.stage == "upload") r.gpu_uploads = e.calls;
      r.faces = summary.faces_swapped;
      return read_image(job.output);
    };
    auto host = run(SwapJob::FramesOnGpu::kOff);
    auto kept = run(SwapJob::FramesOnGpu::kAuto);
    std::printf("%s: host frames %s, frames on the GPU %s (%lld faces, %ld uploads)\n", budget,
                host.is_ok() ? "ok" : host.status().to_string().c_str(),
                kept.is_ok() ? "ok" : kept.status().to_string().c_str(), static_cast<long long>(r.faces),
                r.gpu_uploads);
    r.host_ran = host.is_ok();
    if (!host.is_ok()) {
      EXPECT_EQ(host.status().code(), StatusCode::kOutOfMemory) << host.status().to_string();
    } else if (kept.is_ok()) {
      expect_same_but_fp16_rounding(*host, *kept, budget);
    } else {
      ADD_FAILURE() << budget << ": frames on the GPU failed where host frames ran: " << kept.status().to_string();
    }
    runs.push_back(r);
  }
  return runs;
}

// At budgets too small for a whole 4K frame on the GPU beside gfpgan's activations (session 9:
// below ~150 MiB each face's region went up instead), frames on the GPU (auto) succeed wherever
// host frames do, with the same image: the frame goes up as the part holding the faces' regions
// (a fraction of the frame), in one upload, and a part that does not fit would fall back to the
// regions one face at a time, then to the host.
TEST(CudaFrames, TightBudgetsRunFramesOnTheGpuWhereHostFramesRun) {
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "arcface_w600k_r50", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string dir = ::testing::TempDir();
  const std::string photo_png = dir + "/budget_photo.png", target_png = dir + "/budget_4k.png";
  ASSERT_TRUE(write_image(photo_png, *image).is_ok());
  ASSERT_TRUE(write_image(target_png, resize(*image, 3840, 2160)).is_ok());
  const auto runs = run_budgets(photo_png, target_png, {"400MiB", "200MiB", "170MiB", "150MiB", "140MiB", "130MiB"},
                                SwapJob().selector.mode);
  const auto tight = std::count_if(runs.begin(), runs.end(),
                                   [](const BudgetRuns& r) { return r.host_ran && r.budget != "400MiB"; });
  EXPECT_GE(tight, 1) << "no budget below 400 MiB let host frames run";
}

// Two faces in opposite corners of a 4K frame: the part holding both faces' regions is most of
// the frame, and at a budget where it does not fit beside gfpgan's activations the job sends
// each face's region alone (face/face_region.h) instead, with the host frames' image. At every
// budget where host frames run, frames on the GPU run too.
TEST(CudaFrames, FacesFarApartGoUpRegionByRegionWhenTheirPartDoesNotFit) {
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "arcface_w600k_r50", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string dir = ::testing::TempDir();
  const std::string photo_png = dir + "/apart_photo.png", target_png = dir + "/apart_4k.png";
  ASSERT_TRUE(write_image(photo_png, *image).is_ok());
  // The photo at 1600×1600 in the top-left and bottom-right corners of a grey 4K frame.
  const Image big = resize(*image, 1600, 1600);
  Image target(3840, 2160, 3);
  std::fill(target.pixels.begin(), target.pixels.end(), std::uint8_t{128});
  for (const auto& [left, top] : {std::pair{0, 0}, std::pair{3840 - 1600, 2160 - 1600}})
    for (int y = 0; y < 1600; ++y)
      std::copy_n(big.row(y), 1600 * 3, target.row(top + y) + static_cast<std::size_t>(left) * 3);
  ASSERT_TRUE(write_image(target_png, target).is_ok());
  const auto runs = run_budgets(
      photo_png, target_png, {"400MiB", "200MiB", "170MiB", "160MiB", "150MiB", "140MiB", "130MiB", "120MiB", "110MiB"},
      SelectorMode::kMany);
  int split = 0;  // budgets where the faces' regions went up one at a time
  for (const BudgetRuns& r : runs) {
    if (!r.host_ran) continue;
    EXPECT_EQ(r.faces, 2) << r.budget;
    split += r.gpu_uploads > 1;
  }
  EXPECT_GE(split, 1) << "no budget sent the faces' regions one at a time";
}

// A video whose frames stay on the GPU from the swapper to the enhancer and come back on the job's
// download thread while the next frames' work is issued: every frame in order, each the host
// frames' frame but for fp16 rounding (both outputs lossless, so the encoder adds nothing).
TEST(CudaFrames, VideoFramesComeBackInOrderAsTheHostFrames) {
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "arcface_w600k_r50", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string dir = ::testing::TempDir();
  const std::string photo_png = dir + "/video_photo.png", clip = dir + "/video_drift.mp4";
  ASSERT_TRUE(write_image(photo_png, *image).is_ok());
  constexpr int kFrames = 12;
  test::write_drift_clip(clip, *image, 512, kFrames, 25, 6.0);
  std::vector<std::vector<VideoFrame>> outputs;
  for (const SwapJob::FramesOnGpu frames : {SwapJob::FramesOnGpu::kOff, SwapJob::FramesOnGpu::kAuto}) {
    const bool kept = frames == SwapJob::FramesOnGpu::kAuto;
    SwapJob job = gpu_swap_job(photo_png, clip, dir + (kept ? "/video_kept.mp4" : "/video_host.mp4"));
    job.frames_on_gpu = frames;
    job.encode.crf = 0;
    auto summary = run_swap(job);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(summary->faces_swapped, kFrames);
    long downloads = 0;
    for (const TimeLedger::Entry& e : summary->stages)
      if (e.stage == "download") downloads = e.calls;
    EXPECT_EQ(downloads, kept ? kFrames : 0) << "frames on the GPU: " << kept;
    auto reader = VideoReader::open(job.output);
    ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
    std::vector<VideoFrame> read;
    VideoFrame f;
    while ((*reader)->read(f).value()) read.push_back(f);
    ASSERT_EQ(read.size(), static_cast<std::size_t>(kFrames));
    for (int i = 1; i < kFrames; ++i) EXPECT_GT(read[i].pts, read[i - 1].pts);
    outputs.push_back(std::move(read));
  }
  for (int i = 0; i < kFrames; ++i)
    expect_same_but_fp16_rounding(outputs[0][i].image, outputs[1][i].image, "frame " + std::to_string(i));
}

// --gpu-lanes 2 (the face analysis on compute lane 1) writes what one lane writes: FaceFusion's
// swapper and face enhancer on the photo, swapped with itself.
TEST(CudaLanes, TheAnalysisOnItsOwnLaneWritesTheOneLaneImage) {
  if (const std::string m = missing_model({"fr_detect", "inswapper_128", "arcface_w600k_r50", "gfpgan_1.4"}); !m.empty())
    GTEST_SKIP() << m << " not in FSWAP_GPU_MODELS";
  auto image = photo();
  ASSERT_TRUE(image.is_ok()) << image.status().to_string();
  const std::string dir = ::testing::TempDir();
  const std::string photo_png = dir + "/lanes_photo.png";
  ASSERT_TRUE(write_image(photo_png, *image).is_ok());
  std::vector<Image> written;
  for (int lanes : {1, 2}) {
    SwapJob job = gpu_swap_job(photo_png, photo_png, dir + "/lanes_" + std::to_string(lanes) + ".png");
    job.gpu_lanes = lanes;
    auto summary = run_swap(job);
    ASSERT_TRUE(summary.is_ok()) << lanes << " lanes: " << summary.status().to_string();
    EXPECT_GE(summary->faces_swapped, 1);
    auto out = read_image(job.output);
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    written.push_back(std::move(*out));
  }
  ASSERT_EQ(written[0].pixels.size(), written[1].pixels.size());
  int differing = 0, worst = 0;
  for (std::size_t i = 0; i < written[0].pixels.size(); ++i) {
    const int d = std::abs(int(written[0].pixels[i]) - int(written[1].pixels[i]));
    differing += d > 0;
    worst = std::max(worst, d);
  }
  EXPECT_LE(worst, 1) << differing << " values differ between one and two lanes";
}

}  // namespace
}  // namespace fswap
