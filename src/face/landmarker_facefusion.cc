#include "face/landmarker_facefusion.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>

#include "face/face_templates.h"
#include "face/model_table.h"
#include "face/recognizer.h"
#include "imaging/filter.h"
#include "imaging/transform.h"

namespace fswap {
namespace {

std::int64_t elements_of(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d < 0 ? 1 : d;
  return n;
}

// The largest of n > 0 values: eight running maxima, which the compiler keeps side by side
// where std::max_element's index chain takes one value at a time (a 2dfan4 face has 68 × 4096).
float largest(const float* v, std::int64_t n) {
  std::array<float, 8> m;
  m.fill(v[0]);
  const std::int64_t whole = n / 8 * 8;
  for (std::int64_t i = 0; i < whole; i += 8)
    for (int k = 0; k < 8; ++k) m[k] = std::max(m[k], v[i + k]);
  for (std::int64_t i = whole; i < n; ++i) m[0] = std::max(m[0], v[i]);
  return *std::max_element(m.begin(), m.end());
}

// The largest batch of one landmarker run (a face from each of two frames): more faces run in
// batches of this size, so a video's runs take at most two shapes, whose plans (and convolution
// algorithm searches) are all made in its first frames.
constexpr std::size_t kLandmarkerBatch = 2;

// numpy.interp(v, [0, high], [0, 1]).
float interp_unit(double v, double high) { return static_cast<float>(std::clamp(v / high, 0.0, 1.0)); }

}  // namespace

Affine facefusion_landmarker_transform(const FaceBox& box) {
  const double size = kFaceFusionLandmarkerSize;
  const double scale = 195.0 / std::max<double>({box.width(), box.height(), 1.0});
  const double tx = (size - (double(box.x1) + box.x2) * scale) * 0.5;
  const double ty = (size - (double(box.y1) + box.y2) * scale) * 0.5;
  return Affine{scale, 0, tx, 0, scale, ty};
}

int facefusion_face_angle(const std::array<Point2f, 68>& points) {
  const double theta = std::atan2(double(points[16].y) - points[0].y, double(points[16].x) - points[0].x);
  double degrees = std::fmod(theta * 180.0 / std::numbers::pi, 360.0);
  if (degrees < 0) degrees += 360.0;
  // numpy.argmin over |linspace(0, 360, 5) − θ|: the first of equals; 360 is 0.
  int best = 0;
  for (int k = 1; k <= 4; ++k)
    if (std::abs(90.0 * k - degrees) < std::abs(90.0 * best - degrees)) best = k;
  return best % 4 * 90;
}

Affine facefusion_landmarker_rotation(int angle) {
  // getRotationMatrix2D(centre, angle, 1) = [[α, β, (1 − α)·cx − β·cy], [−β, α, β·cx + (1 − α)·cy]]
  // with α = cos, β = sin, taken exactly for quarter turns.
  const int quarter = ((angle / 90) % 4 + 4) % 4;
  const double alpha = quarter == 0 ? 1 : quarter == 2 ? -1 : 0;
  const double beta = quarter == 1 ? 1 : quarter == 3 ? -1 : 0;
  const double c = kFaceFusionLandmarkerSize / 2.0;
  return Affine{alpha, beta, (1 - alpha) * c - beta * c, -beta, alpha, beta * c + (1 - alpha) * c};
}

Image facefusion_optimize_contrast(const Image& rgb_crop) {
  constexpr double kMeanLimit = 30;  // on the 8-bit L scale
  constexpr double kClipLimit = 2;
  constexpr int kTiles = 8;
  const auto swap_red_blue = [](Image img) {
    for (std::size_t i = 0; i + 2 < img.pixels.size(); i += 3) std::swap(img.pixels[i], img.pixels[i + 2]);
    return img;
  };
  const Image bgr = swap_red_blue(rgb_crop);
  const Image light = rgb_to_lab_lightness8(bgr);
  double sum = 0;
  for (std::uint8_t v : light.pixels) sum += v;
  if (!(sum / static_cast<double>(light.pixels.size()) < kMeanLimit)) return rgb_crop;
  ImageF lab = rgb_to_lab(bgr);
  const Image even = clahe(light, kClipLimit, kTiles, kTiles);
  for (std::size_t i = 0; i < even.pixels.size(); ++i) lab.pixels[3 * i] = even.pixels[i] * 100.f / 255.f;
  return swap_red_blue(lab_to_rgb(lab));
}

Result<Image> facefusion_landmarker_crop(const Image& rgb, const FaceBox& box, int angle) {
  if (angle != 0 && angle != 90 && angle != 180 && angle != 270)
    return invalid_input("face landmarker: face angle " + std::to_string(angle) + " is not one of 0, 90, 180, 270");
  constexpr int kSize = kFaceFusionLandmarkerSize;
  Image crop = warp_affine(rgb, facefusion_landmarker_transform(box), kSize, kSize, Border::kConstant);
  if (angle != 0) crop = warp_affine(crop, facefusion_landmarker_rotation(angle), kSize, kSize, Border::kConstant);
  return facefusion_optimize_contrast(crop);
}

Tensor facefusion_landmarker_input(const Image& rgb_crop) {
  const int w = rgb_crop.width, h = rgb_crop.height;
  const std::size_t plane = static_cast<std::size_t>(w) * h;
  Tensor t = Tensor::zeros(DType::kFloat32, {1, 3, h, w});
  float* out = t.data<float>();
  for (int c = 0; c < 3; ++c)  // plane c is BGR channel c: RGB channel 2 − c
    for (std::size_t i = 0; i < plane; ++i) out[c * plane + i] = rgb_crop.pixels[i * 3 + (2 - c)] / 255.f;
  return t;
}

std::array<Point2f, 5> facefusion_landmarks5_from_68(const std::array<Point2f, 68>& p) {
  const auto mean = [&](int first) {
    Point2f m;
    for (int i = first; i < first + 6; ++i) m.x += p[i].x / 6, m.y += p[i].y / 6;
    return m;
  };
  return {mean(36), mean(42), p[30], p[48], p[54]};
}

Result<std::unique_ptr<FaceFusionLandmarker>> FaceFusionLandmarker::load(Engine& engine, const std::string& models_dir,
                                                                         const std::string& name,
                                                                         const SessionOptions& options) {
  if (name != "2dfan4" && name != "peppa_wutz")
    return invalid_input("unknown FaceFusion landmarker '" + name + "' (2dfan4, peppa_wutz)");
  const std::string path = models_dir + "/" + name + ".onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "the " + name + " landmarker"));
  std::unique_ptr<FaceFusionLandmarker> l(new FaceFusionLandmarker());
  l->name_ = name;
  SessionOptions batched = options;
  batched.batch = static_cast<int>(kLandmarkerBatch);
  Result<std::unique_ptr<InferenceSession>> session = engine.load(path, batched);
  if (!session) session = engine.load(path, options);  // a graph that bakes batch 1: run face by face
  FSWAP_ASSIGN_OR_RETURN(l->session_, std::move(session));
  const auto& in = l->session_->inputs();
  const auto& out = l->session_->outputs();
  const auto fits = [](const Shape& s, std::initializer_list<std::int64_t> want) {
    if (s.size() != want.size()) return false;
    std::size_t i = 0;
    for (auto w : want) {
      if (w >= 0 && s[i] >= 0 && s[i] != w) return false;
      ++i;
    }
    return true;
  };
  bool ok = in.size() == 1 && in[0].dtype == DType::kFloat32 && fits(in[0].shape, {1, 3, 256, 256}) && !out.empty();
  if (ok && name == "2dfan4")
    ok = out.size() >= 2 && fits(out[0].shape, {1, 68, -1}) && out[0].shape[2] >= 2 && fits(out[1].shape, {1, 68, -1, -1});
  if (ok && name == "peppa_wutz") ok = elements_of(out[0].shape) == 68 * 3;
  if (!ok)
    return invalid_input(path + ": not a " + name + " landmarker: expected input [1,3,256,256] (float32) and " +
                         (name == "2dfan4" ? "outputs [1,68,3] (points) and [1,68,H,W] (heatmaps)"
                                           : "an output of 68×3 values"));
  l->batched_ = in[0].shape[0] < 0;
  return l;
}

Result<FaceLandmarks68> FaceFusionLandmarker::detect(const Image& rgb, const FaceBox& box, int angle) {
  const LandmarkTarget target{&rgb, box, angle};
  FSWAP_ASSIGN_OR_RETURN(std::vector<FaceLandmarks68> found, detect(std::span(&target, 1)));
  return found.front();
}

Result<std::vector<FaceLandmarks68>> FaceFusionLandmarker::detect(std::span<const LandmarkTarget> targets) {
  std::vector<Tensor> inputs;
  for (const LandmarkTarget& t : targets) {
    if (t.rgb->channels != 3) return invalid_input(name_ + ": the frame must be RGB");
    FSWAP_ASSIGN_OR_RETURN(const Image crop, facefusion_landmarker_crop(*t.rgb, t.box, t.angle));
    inputs.push_back(facefusion_landmarker_input(crop));
  }
  const std::size_t per_run = batched_ ? kLandmarkerBatch : 1;
  std::vector<FaceLandmarks68> found;
  for (std::size_t first = 0; first < inputs.size(); first += per_run) {
    const std::size_t n = std::min(per_run, inputs.size() - first);
    std::vector<const Tensor*> items;
    for (std::size_t i = first; i < first + n; ++i) items.push_back(&inputs[i]);
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({n == 1 ? std::move(inputs[first]) : batch_concat(items)}));
    for (std::size_t i = 0; i < n; ++i) {
      FSWAP_ASSIGN_OR_RETURN(FaceLandmarks68 f, decode(outputs, static_cast<std::int64_t>(i), static_cast<std::int64_t>(n),
                                                       targets[first + i]));
      found.push_back(f);
    }
  }
  return found;
}

Result<FaceLandmarks68> FaceFusionLandmarker::decode(const std::vector<Tensor>& outputs, std::int64_t item,
                                                     std::int64_t items, const LandmarkTarget& target) const {
  const Tensor& points = outputs.at(0);
  const std::int64_t per_item = points.elements() / items;
  const float* p = points.data<float>() + item * per_item;
  const int stride = name_ == "2dfan4" ? static_cast<int>(points.shape()[2]) : 3;
  if (per_item < 68 * stride) return invalid_input(name_ + ": returned " + shape_to_string(points.shape()));
  // Turned crop → crop → frame.
  const Affine back =
      facefusion_landmarker_rotation(target.angle).after(facefusion_landmarker_transform(target.box)).inverse().value();
  FaceLandmarks68 result;
  double score = 0;
  for (int i = 0; i < 68; ++i) {
    const float x = p[i * stride] / 64.f * kFaceFusionLandmarkerSize, y = p[i * stride + 1] / 64.f * kFaceFusionLandmarkerSize;
    result.points[i] = back.apply({x, y});
    if (name_ == "peppa_wutz") score += p[i * 3 + 2];
  }
  if (name_ == "peppa_wutz") {
    result.score = interp_unit(score / 68, 0.95);
  } else {
    const Tensor& heatmaps = outputs.at(1);
    const std::int64_t per_point = heatmaps.elements() / items / 68;
    if (per_point <= 0) return invalid_input(name_ + ": returned heatmaps " + shape_to_string(heatmaps.shape()));
    const float* h = heatmaps.data<float>() + item * 68 * per_point;
    for (int i = 0; i < 68; ++i) score += largest(h + i * per_point, per_point);
    result.score = interp_unit(score / 68, 0.9);
  }
  // Outputs that are not numbers (an fp16 overflow gives NaN) are no landmarks: score 0 sends the
  // analyser back to the detector's five points.
  const bool finite = std::isfinite(result.score) &&
                      std::all_of(result.points.begin(), result.points.end(), is_finite);
  if (!finite) result.score = 0;
  return result;
}

Result<std::unique_ptr<FaceLandmarkEstimator>> FaceLandmarkEstimator::load(Engine& engine, const std::string& models_dir,
                                                                           const SessionOptions& options) {
  const std::string path = models_dir + "/fan_68_5.onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "the fan_68_5 landmarker"));
  std::unique_ptr<FaceLandmarkEstimator> e(new FaceLandmarkEstimator());
  FSWAP_ASSIGN_OR_RETURN(e->session_, engine.load(path, options));
  const auto& in = e->session_->inputs();
  const auto& out = e->session_->outputs();
  const bool ok = in.size() == 1 && in[0].name == "input" && in[0].dtype == DType::kFloat32 && in[0].shape.size() == 3 &&
                  (in[0].shape[0] == 1 || in[0].shape[0] < 0) && in[0].shape[1] == 5 && in[0].shape[2] == 2 &&
                  !out.empty() && elements_of(out[0].shape) == 68 * 2;
  if (!ok) return invalid_input(path + ": not a fan_68_5 model: expected input [1,5,2] and an output [1,68,2]");
  return e;
}

Result<std::array<Point2f, 68>> FaceLandmarkEstimator::estimate(const std::array<Point2f, 5>& landmarks5) {
  // The ffhq_512 similarity at size 1: the five points in the template's unit square.
  const Affine to_unit = align_to_template(landmarks5, kFaceFusionFfhq512, 1.f);
  Tensor input = Tensor::zeros(DType::kFloat32, {1, 5, 2});
  for (int i = 0; i < 5; ++i) {
    const Point2f q = to_unit.apply(landmarks5[i]);
    input.data<float>()[2 * i] = q.x;
    input.data<float>()[2 * i + 1] = q.y;
  }
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({input}));
  const Tensor& o = outputs.at(0);
  if (o.elements() != 68 * 2) return invalid_input("fan_68_5: returned " + shape_to_string(o.shape()));
  const Affine back = *to_unit.inverse();
  std::array<Point2f, 68> points;
  for (int i = 0; i < 68; ++i) points[i] = back.apply({o.data<float>()[2 * i], o.data<float>()[2 * i + 1]});
  return points;
}

}  // namespace fswap
