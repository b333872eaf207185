// FaceFusion's face classifier fairface (face_classifier.py; reference/facefusion.md §2.3 step 5):
// the face warped onto arcface_112_v2 at 224×224, RGB (v/255 − ImageNet mean)/std NCHW in, the
// race, gender and age class ids out, categorised as FaceFusion does.
//
//   FSWAP_ASSIGN_OR_RETURN(auto fairface, FairfaceClassifier::load(engine, models_dir, {}));
//   FSWAP_ASSIGN_OR_RETURN(FaceClasses c, fairface->classify(frame, face.landmarks5));
//   if (c.gender == "female" && c.age_first >= 20) ...    (the selector's filters: face/selector.h)
//
// Used from one thread at a time (one InferenceSession).
#pragma once

#include <array>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/tensor.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

inline constexpr int kFairfaceCropSize = 224;

struct FaceClasses {
  std::string gender;             // female (id 1), else male
  std::string race;               // black 1, latino 2, asian 3/4, indian 5, arabic 6, else white
  // The age bucket as FaceFusion's Python range(age_first, age_last), the last left out:
  // 0–2, 3–9, 10–19, …, 60–69, 70–100.
  int age_first = 0, age_last = 0;
};

// FaceFusion's categorize_gender / categorize_race / categorize_age of the model's ids.
FaceClasses categorize_face(std::int64_t race_id, std::int64_t gender_id, std::int64_t age_id);

// The 224×224 crop (arcface_112_v2 × 224, bilinear, replicated borders) and its input tensor.
Image fairface_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5);
Tensor fairface_input(const Image& rgb_crop);

class FairfaceClassifier {
 public:
  // models_dir/fairface.onnx. Missing file kNotFound naming it; an input other than
  // [1,3,224,224] float32 or outputs other than three one-value class ids (race, gender, age)
  // kInvalidInput naming the file.
  static Result<std::unique_ptr<FairfaceClassifier>> load(Engine& engine, const std::string& models_dir,
                                                          const SessionOptions& options);
  Result<FaceClasses> classify(const Image& rgb, const std::array<Point2f, 5>& landmarks5);

 private:
  FairfaceClassifier() = default;
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace fswap
