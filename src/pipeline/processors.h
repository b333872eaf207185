// The face processors of a swap job, built from its options: the face swapper for the chosen
// source face (--face-swapper-model and its options) and the face enhancer
// (--face-enhancer-model and its options).
//
//   FSWAP_ASSIGN_OR_RETURN(auto swapper, make_face_swapper(engine, job, source_image, source_face));
//   FSWAP_ASSIGN_OR_RETURN(auto enhancer, make_face_enhancer(engine, job));
//
// Model files are read from job.analyser.models_dir with job.analyser.session; a missing file is
// kNotFound naming it, a file whose inputs/outputs differ from the model's contract kInvalidInput
// naming it.
#pragma once

#include <memory>

#include "core/status.h"
#include "face/enhancer.h"
#include "face/face.h"
#include "face/swapper.h"
#include "imaging/image.h"
#include "pipeline/swap_job.h"
#include "runtime/engine.h"

namespace fswap {

// source: the chosen source face (with landmarks) in source_image.
Result<std::unique_ptr<FaceSwapper>> make_face_swapper(Engine& engine, const SwapJob& job, const Image& source_image,
                                                       const Face& source);

Result<std::unique_ptr<FaceEnhancer>> make_face_enhancer(Engine& engine, const SwapJob& job);

}  // namespace fswap
