#include "face/swapper.h"

namespace fswap {

FaceSwapper::~FaceSwapper() = default;

Status ClassicalFaceSwapper::swap(Image& frame, const Face& target, TimeLedger* ledger) {
  if (!target.has_landmarks) return invalid_input("classical swap: the target face has no landmarks");
  swapper_.swap(frame, target, options_, ledger);
  return Status::ok();
}

Result<std::unique_ptr<InswapperFaceSwapper>> InswapperFaceSwapper::create(std::shared_ptr<InswapperModel> model,
                                                                           const std::vector<float>& source_embedding,
                                                                           const InswapperSwapOptions& options) {
  if (!model) return invalid_input("inswapper_128: no model given");
  if (source_embedding.size() != static_cast<std::size_t>(kInswapperEmbeddingSize))
    return invalid_input("inswapper_128: the source embedding has " + std::to_string(source_embedding.size()) +
                         " values, expected 512 (arcface_w600k_r50's raw output)");
  std::unique_ptr<InswapperFaceSwapper> s(new InswapperFaceSwapper());
  s->latent_ = inswapper_source_latent(source_embedding, model->emap());
  s->model_ = std::move(model);
  s->box_mask_ = create_box_mask(kInswapperCropSize, kInswapperCropSize, options.face_mask_blur, options.face_mask_padding);
  return s;
}

Status InswapperFaceSwapper::swap(Image& frame, const Face& target, TimeLedger* ledger) {
  if (!target.has_landmarks) return invalid_input("inswapper_128 swap: the target face has no landmarks");
  if (frame.channels != 3) return invalid_input("inswapper_128 swap: the frame must be RGB");
  Affine frame_to_crop;
  ImageF swapped;
  {
    ScopedTimer t(ledger, "swap");
    const Image crop = inswapper_crop(frame, target.landmarks5, &frame_to_crop);
    FSWAP_ASSIGN_OR_RETURN(swapped, model_->run(crop, latent_));
  }
  ScopedTimer t(ledger, "blend");
  paste_back(frame, swapped, box_mask_, frame_to_crop);
  return Status::ok();
}

}  // namespace fswap
