// FaceSwapper: the seam through which the pipeline swaps one target face in a frame, whatever
// the swapper (the classical landmark-driven one, or a FaceFusion model).
//
//   std::unique_ptr<FaceSwapper> swapper;
//   if (model == "inswapper_128") {
//     FSWAP_ASSIGN_OR_RETURN(auto inswapper, InswapperModel::load(engine, path, {}));
//     FSWAP_ASSIGN_OR_RETURN(swapper, InswapperFaceSwapper::create(std::move(inswapper), source_id.embedding, {}));
//   } else {
//     FSWAP_ASSIGN_OR_RETURN(auto classical, ClassicalSwapper::create(source_image, source_face));
//     swapper = std::make_unique<ClassicalFaceSwapper>(std::move(classical), SwapOptions{});
//   }
//   FSWAP_RETURN_IF_ERROR(swapper->swap(frame, target_face, &ledger));   // in place
//
// Implementations record "swap" and "blend" time in the ledger (null: no timing). A swapper is
// used from one thread at a time.
#pragma once

#include <memory>
#include <vector>

#include "core/status.h"
#include "core/time_ledger.h"
#include "face/face.h"
#include "face/paste_back.h"
#include "face/swap_classical.h"
#include "face/swapper_inswapper.h"
#include "imaging/image.h"

namespace fswap {

class FaceSwapper {
 public:
  virtual ~FaceSwapper();
  // Replaces `target` (which must have landmarks) in the RGB frame, in place.
  virtual Status swap(Image& frame, const Face& target, TimeLedger* ledger) = 0;
};

// The default classical swapper behind the interface.
class ClassicalFaceSwapper final : public FaceSwapper {
 public:
  ClassicalFaceSwapper(ClassicalSwapper swapper, SwapOptions options)
      : swapper_(std::move(swapper)), options_(options) {}
  Status swap(Image& frame, const Face& target, TimeLedger* ledger) override;

 private:
  ClassicalSwapper swapper_;
  SwapOptions options_;
};

// FaceFusion's face_swapper with inswapper_128 at pixel boost 128 (one run per face) and the box
// mask only: crop (arcface_128), swap, paste back under the box mask.
struct InswapperSwapOptions {
  float face_mask_blur = 0.3f;           // --face-mask-blur 0..1 (FaceFusion's default 0.3)
  FaceMaskPadding face_mask_padding{};   // --face-mask-padding top right bottom left, % (default 0)
};

class InswapperFaceSwapper final : public FaceSwapper {
 public:
  // source_embedding: the source face's *raw* arcface_w600k_r50 embedding (512 values,
  // ArcfaceEmbedding::embedding). kInvalidInput if it is not 512 values or the model is null.
  static Result<std::unique_ptr<InswapperFaceSwapper>> create(std::shared_ptr<InswapperModel> model,
                                                              const std::vector<float>& source_embedding,
                                                              const InswapperSwapOptions& options);
  Status swap(Image& frame, const Face& target, TimeLedger* ledger) override;

  const std::vector<float>& source_latent() const { return latent_; }

 private:
  InswapperFaceSwapper() = default;
  std::shared_ptr<InswapperModel> model_;
  std::vector<float> latent_;  // inswapper_source_latent(source embedding, emap)
  ImageF box_mask_;            // the same for every face: it depends only on the crop size
};

}  // namespace fswap
