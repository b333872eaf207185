// The model registry (models/facefusion_models.json) against fswap's model tables: every model
// fswap can be asked to run has an entry with its file, role, licence, source and URL, and an
// entry without a pinned sha256 says why (FaceFusion's reference gives no hashes).
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <string>

#include "face/enhancer.h"
#include "face/swapper_facefusion.h"
#include "runtime/engines/model_registry.h"

namespace fswap {
namespace {

const std::string kRegistry = std::string(FSWAP_SOURCE_DIR) + "/models/facefusion_models.json";

const ModelRegistry& registry() {
  static const ModelRegistry reg = load_model_registry(kRegistry).value();
  return reg;
}

// A FaceFusion asset fswap runs: listed as supported, under its FaceFusion file name, with the
// asset URL, a licence, a source and the option that needs it.
void expect_runnable_asset(const std::string& name) {
  SCOPED_TRACE(name);
  const ModelEntry* e = registry().find(name);
  ASSERT_NE(e, nullptr) << name << " is not in " << kRegistry;
  EXPECT_EQ(e->file, name + ".onnx");
  EXPECT_TRUE(e->supported);
  EXPECT_FALSE(e->role.empty());
  EXPECT_FALSE(e->licence.empty());
  EXPECT_FALSE(e->used_by.empty());
  EXPECT_NE(e->source.find("facefusion-assets"), std::string::npos) << e->source;
  EXPECT_EQ(e->url, registry().url_base + "/" + e->file);
}

TEST(ModelCatalogue, EverySwapperAndItsConverter) {
  for (const auto& name : face_swapper_model_names()) {
    expect_runnable_asset(name);
    const FaceSwapperModelSpec spec = face_swapper_model_spec(name).value();
    if (!spec.converter.empty()) expect_runnable_asset(spec.converter);
  }
  expect_runnable_asset("arcface_w600k_r50");
}

TEST(ModelCatalogue, EveryEnhancerDetectorLandmarkerMaskAndClassifier) {
  for (const auto& name : face_enhancer_model_names()) expect_runnable_asset(name);
  for (const char* name : {"yoloface_8n", "scrfd_2.5g", "retinaface_10g", "yunet_2023_mar", "2dfan4", "peppa_wutz",
                           "fan_68_5", "fairface", "xseg_1", "xseg_2", "xseg_3", "bisenet_resnet_18", "bisenet_resnet_34",
                           "real_esrgan_x2", "real_esrgan_x2_fp16", "real_esrgan_x4", "real_esrgan_x4_fp16", "real_esrgan_x8",
                           "real_esrgan_x8_fp16"})
    expect_runnable_asset(name);
}

// No invented hashes: an entry either pins a sha256 or carries a hash_note saying none is known.
TEST(ModelCatalogue, UnpinnedEntriesSaySo) {
  std::ifstream in(kRegistry);
  const nlohmann::json doc = nlohmann::json::parse(in);
  int unpinned = 0;
  for (const auto& m : doc.at("models")) {
    SCOPED_TRACE(m.at("name").get<std::string>());
    if (m.at("sha256").is_null()) {
      ++unpinned;
      ASSERT_TRUE(m.contains("hash_note"));
      EXPECT_NE(m["hash_note"].get<std::string>().find("no hash"), std::string::npos);
    } else {
      EXPECT_EQ(m["sha256"].get<std::string>().size(), 64u);
    }
  }
  EXPECT_GT(unpinned, 40);
  // Names and files are unique.
  std::set<std::string> names, files;
  for (const auto& e : registry().models) {
    EXPECT_TRUE(names.insert(e.name).second) << e.name;
    EXPECT_TRUE(files.insert(e.file).second) << e.file;
  }
}

}  // namespace
}  // namespace fswap
