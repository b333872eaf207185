#include "face/frame_enhancer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/log.h"
#include "face/enhancer.h"
#include "face/model_table.h"
#include "imaging/transform.h"
#include "onnx/onnx_loader.h"
#include "runtime/memory_plan.h"
#include "runtime/passes.h"

namespace fswap {

namespace {

// FaceFusion's create_static_model_set `size` and `scale`. tghq_face_x8's tiling is not in our
// reference (reference/facefusion.md §2.6): taken as real_esrgan_x8's.
constexpr FrameEnhancerTiling kEsrgan{256, 16, 8};  // real_esrgan_*, real_hatgan_x4, tghq_face_x8
constexpr FrameEnhancerTiling kSmall{128, 8, 4};    // most ×4 models

const std::vector<FrameEnhancerModelInfo>& model_table() {
  static const std::vector<FrameEnhancerModelInfo> table = {
      {"clear_reality_x4", 4, kSmall},
      {"face_dat_x4", 4, kSmall},
      {"lsdir_x4", 4, kSmall},
      {"nomos8k_sc_x4", 4, kSmall},
      {"real_esrgan_x2", 2, kEsrgan},
      {"real_esrgan_x2_fp16", 2, kEsrgan},
      {"real_esrgan_x4", 4, kEsrgan},
      {"real_esrgan_x4_fp16", 4, kEsrgan},
      {"real_esrgan_x8", 8, kEsrgan},
      {"real_esrgan_x8_fp16", 8, kEsrgan},
      {"real_hatgan_x4", 4, kEsrgan},
      {"real_web_photo_x4", 4, {64, 4, 2}},
      {"realistic_rescaler_x4", 4, kSmall},
      {"remacri_x4", 4, kSmall},
      {"siax_x4", 4, kSmall},
      {"span_kendata_x4", 4, kSmall},
      {"swin2_sr_x4", 4, kSmall},
      {"tghq_face_x8", 8, kEsrgan},
      {"ultra_sharp_x4", 4, kSmall},
      {"ultra_sharp_2_x4", 4, {1024, 64, 32}},
  };
  return table;
}

bool dim_fits(std::int64_t have, std::int64_t want) { return have == want || have < 0; }

bool image_shape_fits(const Shape& s, int size) {
  return s.size() == 4 && dim_fits(s[0], 1) && dim_fits(s[1], 3) && dim_fits(s[2], size) && dim_fits(s[3], size);
}

bool tiling_valid(const FrameEnhancerTiling& t) { return t.overlap >= 1 && t.pad >= 0 && t.tile > 4 * t.overlap; }

}  // namespace

const std::vector<std::string>& frame_enhancer_model_names() {
  static const std::vector<std::string> names = model_table_names(model_table());
  return names;
}

Result<FrameEnhancerModelInfo> frame_enhancer_model_info(const std::string& name) {
  return find_in_model_table(model_table(), name, "frame enhancer");
}

FrameTiles create_tile_frames(const Image& frame, const FrameEnhancerTiling& t) {
  FSWAP_CHECK(tiling_valid(t), "create_tile_frames: invalid tiling");
  const int tw = t.tile - 2 * t.overlap;
  // numpy.pad by `pad` all round, then by overlap (top, left) and overlap + tw − size % tw
  // (bottom, right): the frame sits at (pad + overlap, pad + overlap) in zeros.
  const int h1 = frame.height + 2 * t.pad, w1 = frame.width + 2 * t.pad;
  FrameTiles out;
  out.pad_height = h1 + 2 * t.overlap + tw - h1 % tw;
  out.pad_width = w1 + 2 * t.overlap + tw - w1 % tw;
  out.rows = (out.pad_height - 2 * t.overlap) / tw;
  out.columns = (out.pad_width - 2 * t.overlap) / tw;
  const int offset = t.pad + t.overlap, c = frame.channels;
  out.tiles.reserve(static_cast<std::size_t>(out.rows) * out.columns);
  for (int r = 0; r < out.rows; ++r) {
    for (int col = 0; col < out.columns; ++col) {
      Image tile(t.tile, t.tile, c);
      const int top = r * tw - offset, left = col * tw - offset;  // in frame coordinates
      const int x0 = std::max(0, -left), x1 = std::min(t.tile, frame.width - left);
      for (int y = 0; y < t.tile && x0 < x1; ++y) {
        const int fy = top + y;
        if (fy < 0 || fy >= frame.height) continue;
        std::memcpy(&tile.at(x0, y), &frame.at(left + x0, fy), static_cast<std::size_t>(x1 - x0) * c);
      }
      out.tiles.push_back(std::move(tile));
    }
  }
  return out;
}

Image merge_tile_frames(const std::vector<Image>& tiles, int width, int height, int pad_width, int pad_height,
                        const FrameEnhancerTiling& t) {
  FSWAP_CHECK(!tiles.empty(), "merge_tile_frames: no tiles");
  const int c = tiles[0].channels;
  const int tw = tiles[0].width - 2 * t.overlap;
  const int per_row = std::min(pad_width / tw, static_cast<int>(tiles.size()));
  Image merged(pad_width, pad_height, c);
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    const Image& tile = tiles[i];
    const int core_w = tile.width - 2 * t.overlap, core_h = tile.height - 2 * t.overlap;
    const int top = static_cast<int>(i) / per_row * core_h, left = static_cast<int>(i) % per_row * core_w;
    // numpy slice assignment: the part that falls inside the merged frame.
    const int w = std::min(core_w, pad_width - left), h = std::min(core_h, pad_height - top);
    for (int y = 0; y < h && w > 0; ++y)
      std::memcpy(&merged.at(left, top + y), &tile.at(t.overlap, t.overlap + y), static_cast<std::size_t>(w) * c);
  }
  return crop(merged, Rect{t.pad, t.pad, width, height});
}

Tensor frame_enhancer_input_tensor(const Image& rgb_tile) {
  const int w = rgb_tile.width, h = rgb_tile.height;
  Tensor t = Tensor::zeros(DType::kFloat32, {1, 3, h, w});
  float* v = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) v[(static_cast<std::size_t>(c) * h + y) * w + x] = rgb_tile.at(x, y, c) / 255.f;
  return t;
}

Image frame_enhancer_output_to_tile(const Tensor& output) {
  const Shape& s = output.shape();
  FSWAP_CHECK(s.size() == 4 && s[0] == 1 && s[1] == 3, "frame_enhancer_output_to_tile: expected [1,3,H,W]");
  const int h = static_cast<int>(s[2]), w = static_cast<int>(s[3]);
  Image tile(w, h, 3);
  const float* v = output.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float scaled = v[(static_cast<std::size_t>(c) * h + y) * w + x] * 255.f;
        // clip(0, 255) then astype(uint8): truncation (NaN becomes 0)
        tile.at(x, y, c) = static_cast<std::uint8_t>(scaled > 0.f ? std::min(scaled, 255.f) : 0.f);
      }
  return tile;
}

Result<int> tile_for_budget(const Graph& graph, const FrameEnhancerTiling& tiling, int frame_side,
                            std::uint64_t budget_bytes, bool fp16) {
  const auto fits = [&](int tile) -> Result<bool> {
    Graph g = graph;
    FSWAP_RETURN_IF_ERROR(specialize(g, {{1, 3, tile, tile}}));
    if (fp16) FSWAP_RETURN_IF_ERROR(convert_to_fp16(g));
    FSWAP_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(g));
    return plan.weight_bytes < budget_bytes && plan.arena_bytes <= (budget_bytes - plan.weight_bytes) / 2;
  };
  FSWAP_ASSIGN_OR_RETURN(const bool facefusions_fits, fits(tiling.tile));
  if (!facefusions_fits) {
    // Halved while it does not fit, down to the smallest valid tile (tile > 4·overlap).
    int tile = tiling.tile;
    while (tile / 2 > 4 * tiling.overlap) {
      tile /= 2;
      FSWAP_ASSIGN_OR_RETURN(const bool fit, fits(tile));
      if (fit) break;
    }
    return tile;
  }
  const int cover = frame_side + 2 * (tiling.pad + tiling.overlap);
  int best = tiling.tile;
  for (int tile = tiling.tile * 2; best < cover; tile *= 2) {
    FSWAP_ASSIGN_OR_RETURN(const bool fit, fits(tile));
    if (!fit) break;
    best = tile;
  }
  return best;
}

Status FrameEnhancerModel::fit_tile(int frame_side) {
  if (tile_budget_bytes_ == 0) return Status::ok();
  const std::uint64_t budget = std::exchange(tile_budget_bytes_, 0);
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_onnx(path_));
  FSWAP_RETURN_IF_ERROR(optimize(graph));
  const int facefusion_tile = info_.tiling.tile;
  FSWAP_ASSIGN_OR_RETURN(info_.tiling.tile, tile_for_budget(graph, info_.tiling, frame_side, budget, fp16_));
  log_info(path_ + ": tile " + std::to_string(info_.tiling.tile) + " from the device budget (FaceFusion's " +
           std::to_string(facefusion_tile) + ")");
  return Status::ok();
}

Result<std::unique_ptr<FrameEnhancerModel>> FrameEnhancerModel::load(Engine& engine, const std::string& models_dir,
                                                                     const std::string& name,
                                                                     const SessionOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(FrameEnhancerModelInfo info, frame_enhancer_model_info(name));
  const std::string path = models_dir + "/" + name + ".onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "--frame-enhancer-model " + name));
  return load_file(engine, path, info, options);
}

Result<std::unique_ptr<FrameEnhancerModel>> FrameEnhancerModel::load_file(Engine& engine, const std::string& model_path,
                                                                          const FrameEnhancerModelInfo& info,
                                                                          const SessionOptions& options) {
  if (info.scale < 1 || !tiling_valid(info.tiling))
    return invalid_input(model_path + ": invalid scale or tiling for " + info.name);
  std::unique_ptr<FrameEnhancerModel> model(new FrameEnhancerModel());
  model->info_ = info;
  model->path_ = model_path;
  FSWAP_ASSIGN_OR_RETURN(model->session_, engine.load(model_path, options));
  const auto& in = model->session_->inputs();
  const auto& out = model->session_->outputs();
  const int tile = info.tiling.tile, big = tile * info.scale;
  const bool ok = in.size() == 1 && in[0].name == "input" && in[0].dtype == DType::kFloat32 &&
                  image_shape_fits(in[0].shape, tile) && !out.empty() && out[0].dtype == DType::kFloat32 &&
                  image_shape_fits(out[0].shape, big);
  if (!ok)
    return invalid_input(model_path + ": not a " + info.name + " frame enhancer model: expected one input `input` [1,3," +
                         std::to_string(tile) + "," + std::to_string(tile) + "] (float32) and an output [1,3," +
                         std::to_string(big) + "," + std::to_string(big) + "] (float32)");
  if (engine.name() == "native" && options.device.kind == DeviceKind::kCuda) {
    if (const auto stats = engine.memory_stats(); stats && stats->budget_bytes > 0) {
      model->tile_budget_bytes_ = stats->budget_bytes;
      model->fp16_ = options.precision != Precision::kFloat32;
    }
  }
  return model;
}

Result<Image> FrameEnhancerModel::run(const Image& rgb_tile) {
  const int tile = info_.tiling.tile, big = tile * info_.scale;
  if (rgb_tile.width != tile || rgb_tile.height != tile || rgb_tile.channels != 3)
    return invalid_input(info_.name + ": the tile must be " + std::to_string(tile) + "×" + std::to_string(tile) + " RGB");
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({frame_enhancer_input_tensor(rgb_tile)}));
  const Shape& s = outputs.at(0).shape();
  if (s != Shape{1, 3, big, big})
    return invalid_input(path_ + ": the model returned " + shape_to_string(s) + " for a " + std::to_string(tile) +
                         "² tile, expected [1,3," + std::to_string(big) + "," + std::to_string(big) + "] (scale " +
                         std::to_string(info_.scale) + " for " + info_.name + ")");
  return frame_enhancer_output_to_tile(outputs.at(0));
}

FrameEnhancer::FrameEnhancer(std::unique_ptr<FrameEnhancerModel> model, float blend)
    : model_(std::move(model)), blend_(blend) {
  FSWAP_CHECK(model_ != nullptr, "FrameEnhancer: no model");
}

Result<FrameTiles> FrameEnhancer::run_tiles(const Image& frame, bool shrink, TimeLedger* ledger) {
  if (frame.channels != 3 || frame.empty()) return invalid_input(model_->info().name + ": the frame must be RGB");
  ScopedTimer timer(ledger, "frame enhance");
  FSWAP_RETURN_IF_ERROR(model_->fit_tile(std::max(frame.width, frame.height)));
  const int tile_size = model_->info().tiling.tile;
  FrameTiles tiles = create_tile_frames(frame, model_->info().tiling);
  for (Image& tile : tiles.tiles) {
    FSWAP_ASSIGN_OR_RETURN(tile, model_->run(tile));
    if (shrink) tile = resize(tile, tile_size, tile_size, Interp::kArea);
  }
  return tiles;
}

Result<Image> FrameEnhancer::upscale(const Image& frame, TimeLedger* ledger) {
  FSWAP_ASSIGN_OR_RETURN(FrameTiles tiles, run_tiles(frame, /*shrink=*/false, ledger));
  const FrameEnhancerModelInfo& info = model_->info();
  const int s = info.scale;
  const FrameEnhancerTiling scaled{info.tiling.tile * s, info.tiling.pad * s, info.tiling.overlap * s};
  return merge_tile_frames(tiles.tiles, frame.width * s, frame.height * s, tiles.pad_width * s, tiles.pad_height * s,
                           scaled);
}

Status FrameEnhancer::enhance(Image& frame, TimeLedger* ledger) {
  // Each s × s box lies inside one tile's core (cores, pad and overlap are whole boxes at the
  // enhanced size), so shrinking the tiles before the merge equals shrinking the merged frame,
  // without holding the frame at s² its size.
  FSWAP_ASSIGN_OR_RETURN(FrameTiles tiles, run_tiles(frame, /*shrink=*/true, ledger));
  ScopedTimer timer(ledger, "frame blend");
  const Image shrunk = merge_tile_frames(tiles.tiles, frame.width, frame.height, tiles.pad_width, tiles.pad_height,
                                         model_->info().tiling);
  face_enhancer_blend(frame, shrunk, blend_, Rect{0, 0, frame.width, frame.height});
  return Status::ok();
}

}  // namespace fswap
