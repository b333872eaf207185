// FaceSwapper: the seam through which the pipeline swaps one target face in a frame, whatever
// the swapper (the classical landmark-driven one, or a FaceFusion model).
//
//   std::unique_ptr<FaceSwapper> swapper;
//   if (model != "classical") {
//     FSWAP_ASSIGN_OR_RETURN(auto spec, face_swapper_model_spec(model));
//     FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<FaceSwapperModel> m, FaceSwapperModel::load(engine, dir, spec, {}));
//     FSWAP_ASSIGN_OR_RETURN(FaceMasker masker, FaceMasker::load(engine, dir, FaceMaskOptions{}, {}));
//     FSWAP_ASSIGN_OR_RETURN(swapper, FaceFusionFaceSwapper::create(m, {arcface.embedding}, std::move(masker), spec.size));
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
#include "face/device_face.h"
#include "face/face.h"
#include "face/face_masker.h"
#include "face/paste_back.h"
#include "face/recognizer_arcface.h"
#include "face/swap_classical.h"
#include "face/swapper_facefusion.h"
#include "imaging/image.h"

namespace fswap {

class FaceSwapper {
 public:
  virtual ~FaceSwapper();
  // Replaces `target` (which must have landmarks) in the RGB frame, in place.
  virtual Status swap(Image& frame, const Face& target, TimeLedger* ledger) = 0;
  // The GPU on which this swapper can work on a frame kept there (face/device_face.h), null when
  // it needs the frame on the host.
  virtual DeviceWork* device_work() { return nullptr; }
  // swap() on a frame on device_work()'s GPU, the caller holding it. kUnsupported when
  // device_work() is null.
  virtual Status swap_on_device(const DeviceFrame& frame, const Face& target, TimeLedger* ledger);
  // Frees what the device path keeps on the GPU between frames (the source, a fixed mask), when a
  // face goes to the host path because its region did not fit. Not while holding device_work().
  virtual void release_device_buffers() {}
  // The part of a frame_width × frame_height frame that swap_on_device() reads and writes for
  // `target`: a step run on that part alone, with the face translated into it, gives the same
  // pixels (face/face_region.h). The whole frame unless the swapper knows better.
  virtual Rect device_region(const Face& target, int frame_width, int frame_height) const;
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

// FaceFusion's face_swapper with one of its models (face/swapper_facefusion.h): the target crop at
// the pixel-boost size, the masks chosen before the swap (box, occlusion), the model on the
// crop's sub-images, the masks chosen after it (area, region), their minimum, paste-back into
// the crop's bounding sub-rectangle (face/paste_back.h).
class FaceFusionFaceSwapper final : public FaceSwapper {
 public:
  // source: the source face (FaceSwapperSource: raw embedding, or image + landmarks for the
  // image-source models); pixel_boost: the crop size, a multiple of the model's size
  // (parse_pixel_boost). Errors: a null model, a bad pixel boost, the source's (wrong embedding
  // size, converter failure) — kInvalidInput.
  // weight: --face-swapper-weight 0..1 (balance_source_embedding); other than 0.5 it needs
  // `recognizer` (arcface_w600k_r50) for each target face's embedding, and has no effect on the
  // image-source models (blendswap, uniface), as in FaceFusion.
  static Result<std::unique_ptr<FaceFusionFaceSwapper>> create(std::shared_ptr<FaceSwapperModel> model,
                                                               const FaceSwapperSource& source, FaceMasker masker,
                                                               int pixel_boost, float weight = 0.5f,
                                                               std::shared_ptr<ArcfaceRecognizer> recognizer = nullptr);
  Status swap(Image& frame, const Face& target, TimeLedger* ledger) override;
  // On the GPU when the model runs there, the pixel boost is the model's size, the masks' models
  // (occluder, parser) run on the same GPU and the source needs no per-face balancing
  // (--face-swapper-weight 0.5). A fixed mask (the box alone) is uploaded once; occlusion, area
  // and region masks are made per face there (FaceMasker::before_swap_on_device).
  DeviceWork* device_work() override;
  Status swap_on_device(const DeviceFrame& frame, const Face& target, TimeLedger* ledger) override;
  void release_device_buffers() override;
  // crop_step_rect (face/paste_back.h) of the target's crop; the whole frame for a face without
  // landmarks (the steps refuse it). swap() touches the same part when it does not balance the
  // source (its recognizer reads the frame through another crop).
  Rect device_region(const Face& target, int frame_width, int frame_height) const override;

  // The model's `source` input for this source face, computed once.
  const Tensor& source_input() const { return source_; }

 private:
  FaceFusionFaceSwapper() = default;
  // The target's frame → crop transform at the crop size (face_swapper_crop's).
  Affine crop_affine(const Face& target) const;
  std::shared_ptr<FaceSwapperModel> model_;
  Tensor source_;
  FaceMasker masker_;
  int crop_size_ = 0;
  float weight_ = 0.5f;
  std::shared_ptr<ArcfaceRecognizer> recognizer_;  // set when weight_ balances the source
  KeptBuffer source_on_gpu_, mask_on_gpu_;          // the device path's, uploaded on first use (the mask when fixed)
};

}  // namespace fswap
