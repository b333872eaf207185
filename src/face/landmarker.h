// 68-point landmarker (fr_landmark): the detector box, resized to 64×64 grey, in; 68 points out.
//
//   FSWAP_ASSIGN_OR_RETURN(auto lm, FaceLandmarker::load(engine, models_dir, opts));
//   FSWAP_RETURN_IF_ERROR(lm->landmark(frame, face));   // fills face.landmarks68/5
//
// Used from one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "face/face.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

class FaceLandmarker {
 public:
  static Result<std::unique_ptr<FaceLandmarker>> load(Engine& engine, const std::string& models_dir,
                                                      const SessionOptions& options);
  // Fills face.landmarks68, face.landmarks5 and sets has_landmarks, from face.box.
  Status landmark(const Image& rgb, Face& face);

 private:
  explicit FaceLandmarker(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace fswap
