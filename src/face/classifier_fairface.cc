#include "face/classifier_fairface.h"

#include <filesystem>

#include "face/model_table.h"
#include "face/recognizer.h"
#include "face/recognizer_arcface.h"
#include "imaging/transform.h"

namespace fswap {
namespace {

// A class id output: one integer or float value.
Result<std::int64_t> class_id(const Tensor& t, const char* what) {
  if (t.elements() != 1) return invalid_input(std::string("fairface: the ") + what + " output is " + shape_to_string(t.shape()));
  switch (t.dtype()) {
    case DType::kInt64: return *t.data<std::int64_t>();
    case DType::kInt32: return *t.data<std::int32_t>();
    case DType::kFloat32: return static_cast<std::int64_t>(*t.data<float>());
    default: return invalid_input(std::string("fairface: the ") + what + " output is not an integer or float");
  }
}

}  // namespace

FaceClasses categorize_face(std::int64_t race_id, std::int64_t gender_id, std::int64_t age_id) {
  FaceClasses c;
  c.gender = gender_id == 1 ? "female" : "male";
  c.race = race_id == 1 ? "black"
           : race_id == 2 ? "latino"
           : race_id == 3 || race_id == 4 ? "asian"
           : race_id == 5 ? "indian"
           : race_id == 6 ? "arabic"
                          : "white";
  // categorize_age: range(0, 2), range(3, 9), range(10, 19), …, range(60, 69), else range(70, 100).
  static constexpr int kFirst[9] = {0, 3, 10, 20, 30, 40, 50, 60, 70};
  static constexpr int kLast[9] = {2, 9, 19, 29, 39, 49, 59, 69, 100};
  const int i = age_id >= 0 && age_id < 8 ? static_cast<int>(age_id) : 8;
  c.age_first = kFirst[i];
  c.age_last = kLast[i];
  return c;
}

Image fairface_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5) {
  const Affine m = align_to_template(landmarks5, kFaceFusionArcface112V2, static_cast<float>(kFairfaceCropSize));
  return warp_affine(rgb, m, kFairfaceCropSize, kFairfaceCropSize, Border::kReplicate);
}

Tensor fairface_input(const Image& rgb_crop) {
  constexpr float kMean[3] = {0.485f, 0.456f, 0.406f}, kStd[3] = {0.229f, 0.224f, 0.225f};
  const std::size_t plane = static_cast<std::size_t>(rgb_crop.width) * rgb_crop.height;
  Tensor t = Tensor::zeros(DType::kFloat32, {1, 3, rgb_crop.height, rgb_crop.width});
  float* out = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < plane; ++i) out[c * plane + i] = (rgb_crop.pixels[i * 3 + c] / 255.f - kMean[c]) / kStd[c];
  return t;
}

Result<std::unique_ptr<FairfaceClassifier>> FairfaceClassifier::load(Engine& engine, const std::string& models_dir,
                                                                     const SessionOptions& options) {
  const std::string path = models_dir + "/fairface.onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "the face classifier"));
  std::unique_ptr<FairfaceClassifier> c(new FairfaceClassifier());
  FSWAP_ASSIGN_OR_RETURN(c->session_, engine.load(path, options));
  const auto& in = c->session_->inputs();
  const auto& out = c->session_->outputs();
  bool ok = in.size() == 1 && in[0].dtype == DType::kFloat32 && in[0].shape.size() == 4 && out.size() == 3;
  for (std::size_t i = 0; ok && i < 4; ++i) {
    const std::int64_t want = i == 0 ? 1 : i == 1 ? 3 : kFairfaceCropSize;
    ok = in[0].shape[i] == want || in[0].shape[i] < 0;
  }
  for (std::size_t i = 0; ok && i < out.size(); ++i) {
    std::int64_t n = 1;
    for (auto d : out[i].shape) n *= d < 0 ? 1 : d;
    ok = n == 1;
  }
  if (!ok)
    return invalid_input(path + ": not a fairface model: expected input [1,3,224,224] (float32) and three one-value " +
                         "outputs (race, gender and age ids)");
  return c;
}

Result<FaceClasses> FairfaceClassifier::classify(const Image& rgb, const std::array<Point2f, 5>& landmarks5) {
  if (rgb.channels != 3) return invalid_input("fairface: the frame must be RGB");
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({fairface_input(fairface_crop(rgb, landmarks5))}));
  FSWAP_ASSIGN_OR_RETURN(std::int64_t race, class_id(outputs.at(0), "race"));
  FSWAP_ASSIGN_OR_RETURN(std::int64_t gender, class_id(outputs.at(1), "gender"));
  FSWAP_ASSIGN_OR_RETURN(std::int64_t age, class_id(outputs.at(2), "age"));
  return categorize_face(race, gender, age);
}

}  // namespace fswap
