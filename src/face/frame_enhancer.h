// FaceFusion's frame_enhancer (reference/facefusion.md §1.2 and §2.6): upscales the whole frame
// with one of FaceFusion's upscaler models, tile by tile, then blends the result with the frame.
//
//   FSWAP_ASSIGN_OR_RETURN(auto model, FrameEnhancerModel::load(engine, models_dir, "real_esrgan_x4", {}));
//   FrameEnhancer enhancer(std::move(model), /*blend=*/80);
//   FSWAP_RETURN_IF_ERROR(enhancer.enhance(frame, &ledger));   // in place; the frame keeps its size
//
// As FaceFusion (processors/modules/frame_enhancer/core.py and vision.py), with the model's
// (tile, pad, overlap) and scale s:
//   - create_tile_frames: the frame is zero-padded by `pad` on every side, then by `overlap` on
//     the top and left and by overlap + tw − (padded size mod tw) on the bottom and right, with
//     tw = tile − 2·overlap; tile × tile windows start every tw pixels, row by row;
//   - each tile: v/255 in float32, RGB planes, [1,3,tile,tile]; one run per tile;
//   - its output ×255, clipped to 0..255 and truncated to uint8 (numpy's astype);
//   - merge_tile_frames: each tile's core (overlap·s cut off every side) goes to
//     (row·core, column·core), and the pad·s border is cut off: the frame's size × s.
// FaceFusion then blends at the enhanced size (the original resized up) and its output step
// scales the picture to the target's resolution. fswap keeps the frame's size: the enhanced
// frame is shrunk back with an area average (the exact s × s box; done tile by tile, which is
// the same, so the frame is never held at s² its size), then
// frame·(1 − b) + enhanced·b with b = blend/100, rounded as cv2.addWeighted
// (face_enhancer_blend). Blend 0 leaves the frame unchanged. Our frames are RGB, so
// FaceFusion's BGR flips cancel out.
// A FrameEnhancer is used from one thread at a time (one InferenceSession). Records "frame
// enhance" (tiles and model) and "frame blend" (shrink and blend) in the ledger when given one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "core/time_ledger.h"
#include "imaging/image.h"
#include "runtime/engine.h"
#include "runtime/graph.h"

namespace fswap {

// FaceFusion's model `size` triple. Valid when overlap ≥ 1, pad ≥ 0 and tile > 4·overlap.
struct FrameEnhancerTiling {
  int tile = 256;
  int pad = 16;
  int overlap = 8;
};

// One of FaceFusion's frame enhancer models: its file (<name>.onnx in --models-dir), the
// upscale factor and the tiling.
struct FrameEnhancerModelInfo {
  std::string name;
  int scale = 4;
  FrameEnhancerTiling tiling;
};

// clear_reality_x4, face_dat_x4, lsdir_x4, nomos8k_sc_x4, real_esrgan_x2(_fp16), real_esrgan_x4(_fp16),
// real_esrgan_x8(_fp16), real_hatgan_x4, real_web_photo_x4, realistic_rescaler_x4, remacri_x4,
// siax_x4, span_kendata_x4, swin2_sr_x4, tghq_face_x8, ultra_sharp_x4, ultra_sharp_2_x4.
const std::vector<std::string>& frame_enhancer_model_names();
// The model's scale and tiling; kInvalidInput for a name not in frame_enhancer_model_names().
Result<FrameEnhancerModelInfo> frame_enhancer_model_info(const std::string& name);

// create_tile_frames: the tiles, row by row, and the padded frame's size.
struct FrameTiles {
  std::vector<Image> tiles;
  int columns = 0, rows = 0;
  int pad_width = 0, pad_height = 0;
};
FrameTiles create_tile_frames(const Image& frame, const FrameEnhancerTiling& tiling);

// merge_tile_frames: `tiling` already multiplied by the scale (as FaceFusion passes it), width ×
// height the frame's size × scale, pad_width × pad_height the padded size × scale.
Image merge_tile_frames(const std::vector<Image>& tiles, int width, int height, int pad_width, int pad_height,
                        const FrameEnhancerTiling& tiling);

// [1,3,H,W] float32, value v/255 (float32 division), planes in the tile's channel order.
Tensor frame_enhancer_input_tensor(const Image& rgb_tile);
// Model output [1,3,H,W] → H×W×3 uint8: v·255 clipped to 0..255, truncated.
Image frame_enhancer_output_to_tile(const Tensor& output);

// The tile of the native engine on CUDA, from the device-memory budget (every other engine and
// device keeps FaceFusion's tile): the largest T = tiling.tile · 2^k (k ≥ 0; the doubling stops at
// the first T whose single tile covers the frame, T ≥ frame_side + 2·(pad + overlap)) whose
// activation plan for one [1,3,T,T] run fits half of the budget left after the model's weights:
// plan_memory's arena_bytes of `graph` (the model after optimize(), as the native engine loads it)
// specialised to that shape, and with `fp16` converted to fp16 storage first, ≤ (budget_bytes −
// weight_bytes) / 2. The other half is left to the job's other models and the kernels'
// workspaces. When FaceFusion's tile does not fit, the tile is halved until it does, down to the
// smallest valid one (tile > 4·overlap), so a small budget gets more, smaller runs rather than an
// out-of-memory error; pad and overlap stay FaceFusion's.
// Errors: a graph that cannot be specialised to a tile shape (the engine's message).
Result<int> tile_for_budget(const Graph& graph, const FrameEnhancerTiling& tiling, int frame_side,
                            std::uint64_t budget_bytes, bool fp16);

class FrameEnhancerModel {
 public:
  // Loads models_dir/<name>.onnx. Errors: an unknown name kInvalidInput; a missing file
  // kNotFound naming it; the engine's; a contract other than one float32 input `input` [1,3,T,T] (the
  // name FaceFusion feeds) and a
  // float32 output [1,3,T·s,T·s] (T the tile, s the scale; dynamic dimensions accepted) is
  // kInvalidInput naming the file.
  static Result<std::unique_ptr<FrameEnhancerModel>> load(Engine& engine, const std::string& models_dir,
                                                          const std::string& name, const SessionOptions& options);
  // As above, from an explicit path, with the scale and tiling of `info`.
  static Result<std::unique_ptr<FrameEnhancerModel>> load_file(Engine& engine, const std::string& model_path,
                                                               const FrameEnhancerModelInfo& info,
                                                               const SessionOptions& options);

  const FrameEnhancerModelInfo& info() const { return info_; }

  // Native engine on CUDA: sets the tile once, from the budget, for frames whose larger side is
  // frame_side (tile_for_budget); a no-op elsewhere and after the first call.
  Status fit_tile(int frame_side);

  // One run on a tile × tile RGB tile: the enhanced tile, (tile·scale)² RGB. An output of
  // another shape is kInvalidInput naming the file.
  Result<Image> run(const Image& rgb_tile);

 private:
  FrameEnhancerModel() = default;
  std::unique_ptr<InferenceSession> session_;
  FrameEnhancerModelInfo info_;
  std::string path_;
  std::uint64_t tile_budget_bytes_ = 0;  // native on CUDA: the device budget, until fit_tile
  bool fp16_ = false;                    // native on CUDA: fp16 activations
};

class FrameEnhancer {
 public:
  // blend: --frame-enhancer-blend 0..100 (FaceFusion's default 80).
  FrameEnhancer(std::unique_ptr<FrameEnhancerModel> model, float blend);
  // The whole RGB frame, tiled, run and merged: its size × the model's scale.
  Result<Image> upscale(const Image& frame, TimeLedger* ledger = nullptr);
  // The frame enhanced and blended, in place (same size).
  Status enhance(Image& frame, TimeLedger* ledger);

 private:
  // The frame's tiles, each run; with `shrink`, each brought back to the tile size (area).
  Result<FrameTiles> run_tiles(const Image& frame, bool shrink, TimeLedger* ledger);

  std::unique_ptr<FrameEnhancerModel> model_;
  float blend_;
};

}  // namespace fswap
