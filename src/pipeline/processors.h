// The face processors of a swap job, built from its options: the face swapper for the chosen
// source face (--face-swapper-model and its options) and the face enhancer
// (--face-enhancer-model and its options), and the frame enhancer (--frame-enhancer-model and
// its blend).
//
//   FSWAP_ASSIGN_OR_RETURN(auto swapper, make_face_swapper(engine, job, {{source_image, source_face}}, 0));
//   FSWAP_ASSIGN_OR_RETURN(auto enhancer, make_face_enhancer(engine, job));
//   FSWAP_ASSIGN_OR_RETURN(auto frame_enhancer, make_frame_enhancer(engine, job));
//
// Model files are read from job.analyser.models_dir with job.analyser.session; a missing file is
// kNotFound naming it, a file whose inputs/outputs differ from the model's contract kInvalidInput
// naming it.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/status.h"
#include "face/enhancer.h"
#include "face/face.h"
#include "face/frame_enhancer.h"
#include "face/swapper.h"
#include "imaging/image.h"
#include "pipeline/swap_job.h"
#include "runtime/engine.h"

namespace fswap {

// One source image and its face (with landmarks).
struct SourceFace {
  Image image;
  Face face;
};

// sources: one face per source image, in the order given; best: the one the classical swapper
// uses. FaceFusion's swappers use them all, as FaceFusion does: their arcface identities averaged
// (average_face_swapper_sources), the first one's image for the image-source models.
Result<std::unique_ptr<FaceSwapper>> make_face_swapper(Engine& engine, const SwapJob& job,
                                                       const std::vector<SourceFace>& sources, std::size_t best);

Result<std::unique_ptr<FaceEnhancer>> make_face_enhancer(Engine& engine, const SwapJob& job);

Result<std::unique_ptr<FrameEnhancer>> make_frame_enhancer(Engine& engine, const SwapJob& job);

}  // namespace fswap
