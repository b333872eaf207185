// FaceFusion's frame_enhancer (reference/facefusion.md §1.2, §2.6): the tile split and merge
// against FaceFusion's create_tile_frames / merge_tile_frames recomputed statement by statement
// (tests/support/facefusion_reference.h), the tile pre- and post-processing, the whole frame
// through tiny probe models with a known formula (tests/support/make_frame_enhancer_probes.py),
// the blend, the model contract, and the real_esrgan_x4 replica on both CPU engines (small
// tiles: the full 256 tile costs about 2.3 TFLOP).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "face/enhancer.h"
#include "face/frame_enhancer.h"
#include "imaging/transform.h"
#include "onnx/onnx_loader.h"
#include "runtime/memory_plan.h"
#include "runtime/passes.h"
#include "support/facefusion_reference.h"
#include "support/replicas.h"

namespace fswap {
namespace {

using test::random_image;

TEST(FrameEnhancerModels, FaceFusionsScalesAndTilings) {
  EXPECT_EQ(frame_enhancer_model_names().size(), 20u);
  struct Want {
    const char* name;
    int scale, tile, pad, overlap;
  };
  for (const Want& w : {Want{"real_esrgan_x2", 2, 256, 16, 8}, Want{"real_esrgan_x4_fp16", 4, 256, 16, 8},
                        Want{"real_esrgan_x8", 8, 256, 16, 8}, Want{"real_hatgan_x4", 4, 256, 16, 8},
                        Want{"span_kendata_x4", 4, 128, 8, 4}, Want{"lsdir_x4", 4, 128, 8, 4}, Want{"real_web_photo_x4", 4, 64, 4, 2},
                        Want{"ultra_sharp_2_x4", 4, 1024, 64, 32}}) {
    SCOPED_TRACE(w.name);
    auto info = frame_enhancer_model_info(w.name);
    ASSERT_TRUE(info.is_ok());
    EXPECT_EQ(info->scale, w.scale);
    EXPECT_EQ(info->tiling.tile, w.tile);
    EXPECT_EQ(info->tiling.pad, w.pad);
    EXPECT_EQ(info->tiling.overlap, w.overlap);
  }
  auto unknown = frame_enhancer_model_info("real_esrgan_x3");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(unknown.status().message().find("real_esrgan_x4"), std::string::npos);  // lists the known ones
}

// Sizes around the tile width (exact multiples add a whole tile, as FaceFusion's formula does).
const std::vector<std::pair<int, int>> kFrameSizes = {{1, 1}, {7, 5}, {96, 80}, {240, 224}, {241, 100}, {300, 170}};
const std::vector<FrameEnhancerTiling> kTilings = {{256, 16, 8}, {128, 8, 4}, {64, 4, 2}, {16, 2, 2}};

TEST(FrameEnhancerTiles, SplitEqualsFaceFusions) {
  unsigned seed = 1;
  for (const auto& [w, h] : kFrameSizes)
    for (const FrameEnhancerTiling& t : kTilings) {
      SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h) + " tile " + std::to_string(t.tile));
      const Image frame = random_image(w, h, 3, seed++);
      const FrameTiles ours = create_tile_frames(frame, t);
      const test::ReferenceTiles want = test::reference_create_tile_frames(frame, t.tile, t.pad, t.overlap);
      EXPECT_EQ(ours.pad_width, want.pad_width);
      EXPECT_EQ(ours.pad_height, want.pad_height);
      ASSERT_EQ(ours.tiles.size(), want.tiles.size());
      EXPECT_EQ(static_cast<std::size_t>(ours.rows) * ours.columns, ours.tiles.size());
      for (std::size_t i = 0; i < want.tiles.size(); ++i) {
        ASSERT_EQ(ours.tiles[i].width, t.tile);
        ASSERT_EQ(ours.tiles[i].height, t.tile);
        ASSERT_EQ(ours.tiles[i].pixels, want.tiles[i].pixels) << "tile " << i;
      }
    }
}

TEST(FrameEnhancerTiles, MergeEqualsFaceFusions) {
  unsigned seed = 100;
  for (const auto& [w, h] : kFrameSizes)
    for (const FrameEnhancerTiling& t : kTilings)
      for (int scale : {1, 2, 4}) {
        SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h) + " tile " + std::to_string(t.tile) + " scale " +
                     std::to_string(scale));
        const FrameTiles split = create_tile_frames(Image(w, h, 3), t);
        // Random "model outputs": every pixel of every tile differs, so a misplaced core shows.
        const FrameEnhancerTiling big{t.tile * scale, t.pad * scale, t.overlap * scale};
        std::vector<Image> outputs;
        for (std::size_t i = 0; i < split.tiles.size(); ++i) outputs.push_back(random_image(big.tile, big.tile, 3, seed++));
        const Image ours = merge_tile_frames(outputs, w * scale, h * scale, split.pad_width * scale,
                                             split.pad_height * scale, big);
        const Image want = test::reference_merge_tile_frames(outputs, w * scale, h * scale, split.pad_width * scale,
                                                             split.pad_height * scale, big.pad, big.overlap);
        ASSERT_EQ(ours.width, w * scale);
        ASSERT_EQ(ours.height, h * scale);
        double worst = 0;
        for (std::size_t i = 0; i < want.pixels.size(); ++i)
          worst = std::max(worst, std::abs(double(ours.pixels[i]) - want.pixels[i]));
        EXPECT_LE(worst, 1e-4);
      }
}

TEST(FrameEnhancerTiles, SplitThenMergeGivesTheFrameBack) {
  for (const FrameEnhancerTiling& t : kTilings) {
    const Image frame = random_image(250, 130, 3, 9);
    const FrameTiles split = create_tile_frames(frame, t);
    EXPECT_EQ(merge_tile_frames(split.tiles, 250, 130, split.pad_width, split.pad_height, t).pixels, frame.pixels);
  }
}

TEST(FrameEnhancerTiles, PreAndPostProcessingAreFaceFusions) {
  // prepare_tile_frame: frame[:, :, ::-1] (BGR → RGB) / 255 as float32, NCHW. Our frames are RGB.
  const Image tile = random_image(24, 16, 3, 3);
  const Tensor in = frame_enhancer_input_tensor(tile);
  ASSERT_EQ(in.shape(), (Shape{1, 3, 16, 24}));
  const Image bgr = test::to_bgr(tile);
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 24; ++x)
        worst = std::max(worst, std::abs(in.data<float>()[(c * 16 + y) * 24 + x] - bgr.at(x, y, 2 - c) / 255.0));
  EXPECT_LE(worst, 1e-4);
  // normalize_tile_frame: (x · 255).clip(0, 255).astype(uint8)[:, :, ::-1]: clipped, truncated.
  Tensor out = Tensor::zeros(DType::kFloat32, {1, 3, 4, 5});
  const float values[] = {-0.5f, 0.f, 0.0039f, 0.5f, 0.99999f, 1.f, 1.7f, 0.25f, 0.1234f, 0.9f};
  for (int i = 0; i < 60; ++i) out.data<float>()[i] = values[i % 10] + (i / 10) * 0.01f * (values[i % 10] < 1);
  const Image got = frame_enhancer_output_to_tile(out);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) {
        const float v = out.data<float>()[(c * 4 + y) * 5 + x];
        const double want = std::floor(std::clamp(double(v * 255.f), 0.0, 255.0));
        EXPECT_EQ(got.at(x, y, c), want) << v;
      }
}

class FrameEnhancerProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::frame_enhancer_probe_dir(&why);
    if (dir_.empty()) GTEST_SKIP() << why;
    engine_ = std::move(make_engine("ort").value());
  }
  std::unique_ptr<FrameEnhancerModel> load(const std::string& file, int scale, FrameEnhancerTiling tiling) {
    auto m = FrameEnhancerModel::load_file(*engine_, dir_ + "/" + file, {file, scale, tiling}, {});
    EXPECT_TRUE(m.is_ok()) << m.status().to_string();
    return m ? std::move(*m) : nullptr;
  }
  std::string dir_;
  std::unique_ptr<Engine> engine_;
};

// Every 8-bit value survives /255 then ·255 in float32 with truncation; the probes below rely on it.
TEST(FrameEnhancerTiles, EveryByteSurvivesTheRoundTrip) {
  for (int v = 0; v < 256; ++v) EXPECT_EQ(static_cast<int>(static_cast<float>(v) / 255.f * 255.f), v);
}

TEST_F(FrameEnhancerProbeTest, NearestProbesUpscaleExactly) {
  const Image frame = random_image(75, 41, 3, 5);
  for (int scale : {2, 4, 8}) {
    SCOPED_TRACE(scale);
    FrameEnhancer enhancer(load("nearest_x" + std::to_string(scale) + ".onnx", scale, {32, 4, 4}), 100);
    auto big = enhancer.upscale(frame);
    ASSERT_TRUE(big.is_ok()) << big.status().to_string();
    ASSERT_EQ(big->width, 75 * scale);
    ASSERT_EQ(big->height, 41 * scale);
    EXPECT_EQ(big->pixels, resize(frame, 75 * scale, 41 * scale, Interp::kNearest).pixels);
    // Shrunk back (s × s box) and blended at 100: the frame itself.
    Image out = frame;
    ASSERT_TRUE(enhancer.enhance(out, nullptr).is_ok());
    EXPECT_EQ(out.pixels, frame.pixels);
  }
}

TEST_F(FrameEnhancerProbeTest, ContrastProbeGivesTheFormulaAndBlends) {
  // contrast_x4: nearest ×4 of 1.5·x − 0.25, so each output pixel is trunc(clip((1.5·v/255 − 0.25)·255)),
  // then blended: round(v·(1 − b) + e·b), half to even, as cv2.addWeighted.
  const Image frame = random_image(70, 45, 3, 6);
  for (float blend : {100.f, 80.f, 35.f, 0.f}) {
    SCOPED_TRACE(blend);
    FrameEnhancer enhancer(load("contrast_x4.onnx", 4, {64, 4, 2}), blend);
    Image out = frame;
    TimeLedger ledger;
    ASSERT_TRUE(enhancer.enhance(out, &ledger).is_ok());
    const float b = blend / 100.f, a = 1.f - b;
    int mismatches = 0;
    for (std::size_t i = 0; i < frame.pixels.size(); ++i) {
      const float x = static_cast<float>(frame.pixels[i]) / 255.f;
      const float e = std::floor(std::clamp((x * 1.5f - 0.25f) * 255.f, 0.f, 255.f));
      const float want = std::nearbyint(frame.pixels[i] * a + e * b);
      mismatches += out.pixels[i] != want;
    }
    EXPECT_EQ(mismatches, 0);
    if (blend == 0) EXPECT_EQ(out.pixels, frame.pixels);
    bool timed = false;
    for (const auto& e : ledger.entries()) timed |= e.stage == "frame enhance";
    EXPECT_TRUE(timed);
  }
}

TEST_F(FrameEnhancerProbeTest, ContractErrorsNameTheFile) {
  // One channel in, or an input FaceFusion would not feed: the load refuses it, naming the file.
  for (const char* file : {"one_channel_x4.onnx", "image_named_x4.onnx"}) {
    auto wrong = FrameEnhancerModel::load_file(*engine_, dir_ + "/" + file, {"probe", 4, {32, 4, 4}}, {});
    ASSERT_FALSE(wrong.is_ok()) << file;
    EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(wrong.status().message().find(file), std::string::npos) << wrong.status().to_string();
  }
  // A ×2 model where a ×4 one is expected: dynamic shapes pass the load, the first tile's output
  // does not.
  FrameEnhancer enhancer(load("nearest_x2.onnx", 4, {32, 4, 4}), 80);
  Image frame = random_image(20, 20, 3, 1);
  const Status s = enhancer.enhance(frame, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("nearest_x2.onnx"), std::string::npos) << s.to_string();
  // A missing file is kNotFound naming it; an unknown name kInvalidInput.
  auto missing = FrameEnhancerModel::load(*engine_, dir_, "real_esrgan_x8", {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/real_esrgan_x8.onnx"), std::string::npos);
  EXPECT_EQ(FrameEnhancerModel::load(*engine_, dir_, "nearest_x2", {}).status().code(), StatusCode::kInvalidInput);
}

TEST(FrameEnhancerReplica, RealEsrganX4AgreesOnBothEngines) {
  std::string why;
  const std::string dir = test::frame_enhancer_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  // Two 16 × 16 tiles (about 4.7 GMAC each) instead of FaceFusion's 256 × 256.
  const FrameEnhancerModelInfo info{"real_esrgan_x4", 4, {16, 2, 2}};
  const Image frame = random_image(10, 6, 3, 11);
  std::vector<Image> results;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    auto model = FrameEnhancerModel::load_file(*engine, dir + "/real_esrgan_x4.onnx", info, {});
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    FrameEnhancer enhancer(std::move(*model), 80);
    auto big = enhancer.upscale(frame);
    ASSERT_TRUE(big.is_ok()) << big.status().to_string();
    ASSERT_EQ(big->width, 40);
    ASSERT_EQ(big->height, 24);
    // enhance() shrinks tile by tile: the same as shrinking the merged frame, then the blend.
    Image want = frame, got = frame;
    face_enhancer_blend(want, resize(*big, 10, 6, Interp::kArea), 80, Rect{0, 0, 10, 6});
    ASSERT_TRUE(enhancer.enhance(got, nullptr).is_ok());
    EXPECT_EQ(got.pixels, want.pixels);
    EXPECT_NE(got.pixels, frame.pixels);
    results.push_back(std::move(*big));
  }
  int worst = 0, differ = 0, levels[256] = {};
  for (std::size_t i = 0; i < results[0].pixels.size(); ++i) {
    const int d = std::abs(results[0].pixels[i] - results[1].pixels[i]);
    worst = std::max(worst, d);
    differ += d != 0;
    levels[results[0].pixels[i]] = 1;
  }
  int distinct = 0;
  for (int l : levels) distinct += l;
  EXPECT_GE(distinct, 8) << "the replica's output is flat; the comparison would prove little";
  // uint8 after truncation: a float difference near an integer flips one level.
  EXPECT_LE(worst, 1);
  EXPECT_LE(differ, static_cast<int>(results[0].pixels.size() / 20));
}

TEST(FrameEnhancerReplica, TileForBudgetTakesTheLargestThatFits) {
  std::string why;
  const std::string dir = test::frame_enhancer_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  Graph graph = load_onnx(dir + "/real_esrgan_x4.onnx").value();
  ASSERT_TRUE(optimize(graph).is_ok());
  auto plan_at = [&](int tile) {
    Graph g = graph;
    EXPECT_TRUE(specialize(g, {{1, 3, tile, tile}}).is_ok());
    return plan_memory(g).value();
  };
  const MemoryPlan p16 = plan_at(16), p32 = plan_at(32), p64 = plan_at(64);
  EXPECT_LT(p16.arena_bytes, p32.arena_bytes);
  EXPECT_LT(p32.arena_bytes, p64.arena_bytes);
  // The budget that fits a plan exactly: the weights, then twice the activations.
  auto budget_for = [](const MemoryPlan& p) { return p.weight_bytes + 2 * p.arena_bytes; };
  const FrameEnhancerTiling base{16, 2, 2};
  // A 50-pixel frame: 64 is the first tile to cover it (50 + 2·(2 + 2) = 58).
  EXPECT_EQ(tile_for_budget(graph, base, 50, budget_for(p32), false).value(), 32);
  EXPECT_EQ(tile_for_budget(graph, base, 50, budget_for(p32) - 1, false).value(), 16);
  EXPECT_EQ(tile_for_budget(graph, base, 50, budget_for(p64), false).value(), 64);
  EXPECT_EQ(tile_for_budget(graph, base, 50, std::uint64_t{1} << 40, false).value(), 64);  // no larger than needed
  EXPECT_EQ(tile_for_budget(graph, base, 8, std::uint64_t{1} << 40, false).value(), 16);   // 8 + 8 fits in 16
  EXPECT_EQ(tile_for_budget(graph, base, 50, 1, false).value(), 16);  // nothing fits: 8 is not > 4·overlap
  // FaceFusion's tile too large for the budget: halved until the plan fits, down to the smallest
  // valid tile.
  const FrameEnhancerTiling large{64, 2, 2};
  EXPECT_EQ(tile_for_budget(graph, large, 50, budget_for(p32), false).value(), 32);
  EXPECT_EQ(tile_for_budget(graph, large, 50, budget_for(p16), false).value(), 16);
  EXPECT_EQ(tile_for_budget(graph, large, 50, 1, false).value(), 16);
  // fp16 storage halves the activations: the fp32 budget of 32 fits at least 32.
  EXPECT_GE(tile_for_budget(graph, base, 50, budget_for(p32), true).value(), 32);
  std::printf("real_esrgan_x4 activation plan (fp32): tile 16 %.1f MiB, 32 %.1f MiB, 64 %.1f MiB; weights %.1f MiB\n",
              p16.arena_bytes / 1048576.0, p32.arena_bytes / 1048576.0, p64.arena_bytes / 1048576.0,
              p16.weight_bytes / 1048576.0);
}

TEST_F(FrameEnhancerProbeTest, AnyTileGivesTheNearestProbesFrameBack) {
  // What a budget-sized tile changes is only where the seams fall: a per-pixel model gives the
  // same frame for every tile size.
  const Image frame = random_image(150, 90, 3, 8);
  for (int tile : {32, 64, 128, 256}) {
    FrameEnhancer enhancer(load("nearest_x4.onnx", 4, {tile, 4, 4}), 100);
    Image out = frame;
    ASSERT_TRUE(enhancer.enhance(out, nullptr).is_ok());
    EXPECT_EQ(out.pixels, frame.pixels) << "tile " << tile;
  }
}

}  // namespace
}  // namespace fswap
