#include "pipeline/processors.h"

#include <algorithm>
#include <filesystem>

#include "face/model_table.h"
#include "face/recognizer_arcface.h"

namespace fswap {
namespace fs = std::filesystem;

Result<std::unique_ptr<FaceSwapper>> make_face_swapper(Engine& engine, const SwapJob& job,
                                                       const std::vector<SourceFace>& sources, std::size_t best) {
  if (sources.empty() || best >= sources.size()) return invalid_input("no source face given");
  if (job.face_swapper_model == "classical") {
    FSWAP_ASSIGN_OR_RETURN(ClassicalSwapper classical, ClassicalSwapper::create(sources[best].image, sources[best].face));
    return std::unique_ptr<FaceSwapper>(std::make_unique<ClassicalFaceSwapper>(std::move(classical), job.swap));
  }
  FSWAP_ASSIGN_OR_RETURN(FaceSwapperModelSpec spec, face_swapper_model_spec(job.face_swapper_model));
  FSWAP_ASSIGN_OR_RETURN(int pixel_boost, parse_pixel_boost(job.face_swapper_pixel_boost, spec));
  if (job.face_swapper_weight < 0 || job.face_swapper_weight > 1)
    return invalid_input("--face-swapper-weight must be within 0..1");
  const std::string& dir = job.analyser.models_dir;
  const SessionOptions& session = job.analyser.session;
  FaceMaskOptions mask_options = job.face_mask;
  mask_options.blur = job.swap.mask_blur;
  FSWAP_ASSIGN_OR_RETURN(FaceMasker masker, FaceMasker::load(engine, dir, mask_options, session));
  FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<FaceSwapperModel> model, FaceSwapperModel::load(engine, dir, spec, session));
  std::vector<FaceSwapperSource> identities;
  for (const SourceFace& s : sources) identities.push_back({{}, {}, &s.image, s.face.landmarks5});
  std::shared_ptr<ArcfaceRecognizer> recognizer;
  if (spec.source != FaceSwapperSourceKind::kImage) {
    // FaceFusion takes the identities from arcface_w600k_r50.
    const std::string arcface = dir + "/arcface_w600k_r50.onnx";
    FSWAP_RETURN_IF_ERROR(require_model_file(arcface, "--face-swapper-model " + spec.name));
    FSWAP_ASSIGN_OR_RETURN(recognizer, ArcfaceRecognizer::load(engine, arcface, session));
    for (FaceSwapperSource& id : identities) {
      FSWAP_ASSIGN_OR_RETURN(ArcfaceEmbedding e, recognizer->embed(*id.image, id.landmarks5));
      id.embedding = std::move(e.embedding);
      id.normed_embedding = std::move(e.normed_embedding);
    }
  }
  FSWAP_ASSIGN_OR_RETURN(FaceSwapperSource identity, average_face_swapper_sources(identities));
  FSWAP_ASSIGN_OR_RETURN(auto swapper, FaceFusionFaceSwapper::create(std::move(model), identity, std::move(masker), pixel_boost,
                                                                     job.face_swapper_weight, std::move(recognizer)));
  return std::unique_ptr<FaceSwapper>(std::move(swapper));
}

Result<std::unique_ptr<FaceEnhancer>> make_face_enhancer(Engine& engine, const SwapJob& job) {
  FSWAP_ASSIGN_OR_RETURN(auto model, FaceEnhancerModel::load(engine, job.analyser.models_dir, job.face_enhancer_model,
                                                             job.analyser.session));
  FaceEnhancerOptions options = job.face_enhancer;
  options.face_mask_blur = job.swap.mask_blur;
  // As FaceFusion's face_enhancer: the box mask always, the occlusion mask when chosen.
  std::shared_ptr<FaceOccluder> occluder;
  const auto& types = job.face_mask.types;
  if (std::find(types.begin(), types.end(), "occlusion") != types.end()) {
    FSWAP_ASSIGN_OR_RETURN(occluder, FaceOccluder::load(engine, job.analyser.models_dir, job.face_mask.occluder_model,
                                                        job.analyser.session));
  }
  return std::make_unique<FaceEnhancer>(std::move(model), options, std::move(occluder));
}

Result<std::unique_ptr<FrameEnhancer>> make_frame_enhancer(Engine& engine, const SwapJob& job) {
  FSWAP_ASSIGN_OR_RETURN(auto model, FrameEnhancerModel::load(engine, job.analyser.models_dir, job.frame_enhancer_model,
                                                              job.analyser.session));
  return std::make_unique<FrameEnhancer>(std::move(model), job.frame_enhancer_blend);
}

}  // namespace fswap
