// FaceFusion's masks (face_masker.py; reference/facefusion.md §2.5): the soft threshold, the area
// mask (convex hull + fillConvexPoly), occlusion (xseg_1/2/3, many = minimum) and region
// (bisenet) masks through tiny probes with known formulas, their combination by minimum, option
// errors, and the occluder and parser replicas on both engines. References are FaceFusion's
// steps recomputed here; where FaceFusion calls OpenCV (resize, convexHull, fillConvexPoly,
// GaussianBlur), the reference calls OpenCV itself when the tests are built with it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "face/face_masker.h"
#include "face/model_input.h"
#include "face/paste_back.h"
#include "imaging/image.h"
#include "imaging/transform.h"
#include "support/facefusion_reference.h"
#include "support/replicas.h"
#include "video/media.h"

#ifdef FSWAP_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace fswap {
namespace {

using test::random_image;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

double max_diff(const ImageF& got, const std::vector<double>& want) {
  EXPECT_EQ(got.pixels.size(), want.size());
  double worst = 0;
  for (std::size_t i = 0; i < want.size() && i < got.pixels.size(); ++i)
    worst = std::max(worst, std::abs(got.pixels[i] - want[i]));
  return worst;
}

std::string probe_dir() {
  std::string why;
  const std::string dir = test::swapper_probe_dir(&why);
  if (dir.empty()) ADD_FAILURE() << why;
  return dir;
}

TEST(FaceMask, SoftThresholdIsFaceFusions) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-0.2f, 1.2f);
  ImageF m(96, 80, 1);
  for (float& v : m.pixels) v = d(rng);
  const std::vector<double> want = test::reference_soft_threshold(std::vector<double>(m.pixels.begin(), m.pixels.end()), 96, 80);
  soft_threshold_mask(m);
  EXPECT_LT(max_diff(m, want), 1e-5);
}

TEST(FaceMask, AreaSetsAndRegionIdsAreFaceFusions) {
  EXPECT_EQ(face_mask_area_points("mouth").value().front(), 48);
  EXPECT_EQ(face_mask_area_points("mouth").value().size(), 20u);
  EXPECT_EQ(face_mask_area_points("upper-face").value().size(), 27u);
  EXPECT_EQ(face_mask_area_points("lower-face").value().back(), 31);
  const std::pair<const char*, int> regions[] = {{"skin", 1},  {"left-eyebrow", 2}, {"right-eyebrow", 3}, {"left-eye", 4},
                                                 {"right-eye", 5}, {"glasses", 6},    {"nose", 10},          {"mouth", 11},
                                                 {"upper-lip", 12}, {"lower-lip", 13}};
  for (const auto& [name, id] : regions) EXPECT_EQ(face_mask_region_id(name).value(), id) << name;
  EXPECT_FALSE(face_mask_region_id("hair").is_ok());
  EXPECT_FALSE(face_mask_area_points("forehead").is_ok());
}

TEST(FaceMask, OptionErrorsNameTheValue) {
  FaceMaskOptions o;
  o.types = {"box", "hull"};
  auto s = validate_face_mask_options(o);
  EXPECT_NE(s.to_string().find("unknown type 'hull'"), std::string::npos) << s.to_string();
  o = {};
  o.regions = {"nose", "ears"};
  s = validate_face_mask_options(o);
  EXPECT_NE(s.to_string().find("unknown region 'ears'"), std::string::npos) << s.to_string();
  o = {};
  o.occluder_model = "xseg_4";
  EXPECT_FALSE(validate_face_mask_options(o).is_ok());
  o = {};
  o.types = {"occlusion"};
  auto engine = make_engine("ort").value();
  auto missing = FaceMasker::load(*engine, "/nonexistent", o, {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().to_string().find("/nonexistent/xseg_1.onnx: no such file"), std::string::npos)
      << missing.status().to_string();
  o.types = {"region"};
  o.parser_model = "bisenet_resnet_18";
  missing = FaceMasker::load(*engine, "/nonexistent", o, {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().to_string().find("bisenet_resnet_18.onnx"), std::string::npos);
}

#ifdef FSWAP_HAVE_OPENCV

std::vector<double> from_mat(const cv::Mat& m) {
  std::vector<double> v;
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) v.push_back(m.at<float>(y, x));
  return v;
}

// FaceFusion's soft threshold in OpenCV terms.
cv::Mat cv_soft_threshold(cv::Mat m) {
  cv::Mat clipped = cv::min(cv::max(m, 0.0), 1.0);
  cv::Mat blurred;
  cv::GaussianBlur(clipped, blurred, cv::Size(0, 0), 5);
  blurred = cv::min(cv::max(blurred, 0.5), 1.0);
  return (blurred - 0.5) * 2;
}

// create_area_mask: convexHull(points.astype(int32)), fillConvexPoly(zeros, hull, 1.0), soft threshold.
TEST(FaceMask, AreaMaskIsFaceFusionsOnOpenCv) {
  std::mt19937 rng(3);
  int worst_pixels = 0;
  double worst = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int size = trial % 2 ? 256 : 128;
    std::uniform_real_distribution<float> d(-0.1f * size, 1.1f * size);  // some points off the crop
    std::vector<Point2f> pts(6 + trial % 20);
    for (auto& p : pts) p = {d(rng), d(rng)};
    std::vector<cv::Point> ints;
    for (const auto& p : pts) ints.emplace_back(static_cast<int>(p.x), static_cast<int>(p.y));  // astype(int32)
    std::vector<cv::Point> hull;
    cv::convexHull(ints, hull);
    cv::Mat fill = cv::Mat::zeros(size, size, CV_32FC1);
    cv::fillConvexPoly(fill, hull, cv::Scalar(1.0));
    const ImageF got = create_area_mask(size, size, pts);
    const std::vector<double> want = from_mat(cv_soft_threshold(fill));
    worst = std::max(worst, max_diff(got, want));
    int diff = 0;
    for (std::size_t i = 0; i < want.size(); ++i) diff += std::abs(got.pixels[i] - want[i]) > 1e-4;
    worst_pixels = std::max(worst_pixels, diff);
  }
  std::printf("area mask vs OpenCV over 40 random hulls: max |diff| %.2e, at most %d pixels beyond 1e-4\n", worst, worst_pixels);
  EXPECT_LT(worst, 1e-4);
}

// cv2.resize(uint8 crop, size) with INTER_LINEAR, as the occluder's input.
TEST(FaceMask, CropResizeIsOpenCvsLinear) {
  for (int size : {128, 200, 256, 512}) {
    const Image crop = random_image(size, size, 3, size);
    const Image got = resize_linear_opencv(crop, 256, 256);
    cv::Mat src(size, size, CV_8UC3, const_cast<std::uint8_t*>(crop.pixels.data()));
    cv::Mat want;
    cv::resize(src, want, cv::Size(256, 256));
    int worst = 0, off = 0;
    for (std::size_t i = 0; i < got.pixels.size(); ++i) {
      const int d = std::abs(int(got.pixels[i]) - int(want.data[i]));
      worst = std::max(worst, d);
      off += d != 0;
    }
    std::printf("uint8 %d → 256 bilinear vs cv::resize: max |diff| %d, %d of %zu values differ\n", size, worst, off,
                got.pixels.size());
    EXPECT_LE(worst, 1) << size;
    EXPECT_LT(off, static_cast<int>(got.pixels.size() / 200)) << size;
    if (size >= 256) {
      EXPECT_EQ(off, 0) << size;
    }
  }
}

// create_occlusion_mask through the xseg probes (output a_K·(c0 − c2) + 0.5 of the BGR input).
TEST(FaceMask, OcclusionMaskIsFaceFusionsOnProbes) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  const double slope[] = {1.6, -1.2, 0.8};
  for (const char* engine_name : {"ort", "native"}) {
    auto engine = make_engine(engine_name).value();
    for (const char* model : {"xseg_1", "xseg_2", "many"}) {
      for (int size : {128, 256, 512}) {
        SCOPED_TRACE(std::string(engine_name) + " " + model + " " + std::to_string(size));
        auto occluder = FaceOccluder::load(*engine, dir, model, {});
        ASSERT_TRUE(occluder.is_ok()) << occluder.status().to_string();
        const Image crop = random_image(size, size, 3, size + 1);
        auto got = (*occluder)->mask(crop);
        ASSERT_TRUE(got.is_ok()) << got.status().to_string();
        // FaceFusion: cv2.resize(BGR crop, (256, 256)), /255, model, [0][0], (min over models), clip, resize back.
        const Image bgr = test::to_bgr(crop);
        cv::Mat src(size, size, CV_8UC3, const_cast<std::uint8_t*>(bgr.pixels.data())), small;
        cv::resize(src, small, cv::Size(256, 256));
        cv::Mat out(256, 256, CV_32FC1);
        for (int y = 0; y < 256; ++y)
          for (int x = 0; x < 256; ++x) {
            const cv::Vec3b p = small.at<cv::Vec3b>(y, x);
            const double diff = (p[0] - p[2]) / 255.0;  // input channels 0 and 2 (B and R)
            double v = 1e9;
            for (int k = 0; k < 3; ++k)
              if (std::string(model) == "many" || std::string(model) == "xseg_" + std::to_string(k + 1))
                v = std::min(v, slope[k] * diff + 0.5);
            out.at<float>(y, x) = static_cast<float>(std::clamp(v, 0.0, 1.0));
          }
        cv::Mat back;
        cv::resize(out, back, cv::Size(size, size));
        // At 256 and above the crop's resize is exact; enlarging a 128 crop, ~0.2% of the uint8
        // values may be one level off OpenCV's (see CropResizeIsOpenCvsLinear).
        EXPECT_LT(max_diff(*got, from_mat(cv_soft_threshold(back))), size >= 256 ? 1e-4 : 1e-3);
      }
    }
  }
}

// create_region_mask through the parser probe (class k = w_k · input[k % 3] + b_k).
TEST(FaceMask, RegionMaskIsFaceFusionsOnProbe) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  for (const char* engine_name : {"ort", "native"}) {
    auto engine = make_engine(engine_name).value();
    auto parser = FaceParser::load(*engine, dir, "bisenet_resnet_34", {});
    ASSERT_TRUE(parser.is_ok()) << parser.status().to_string();
    for (int size : {256, 512}) {
      SCOPED_TRACE(std::string(engine_name) + " " + std::to_string(size));
      ImageF crop(size, size, 3);  // the swapped crop is float; smooth, so regions are blobs
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
          for (int c = 0; c < 3; ++c)
            crop.at(x, y, c) = 127.5f + 120.f * std::sin(x * 8.f / size + c) * std::cos(y * 6.f / size - c);
      const std::vector<int> ids = {0, 1, 2};  // classes the probe's argmax reaches
      auto got = (*parser)->region_mask(crop, ids);
      ASSERT_TRUE(got.is_ok()) << got.status().to_string();
      // FaceFusion: cv2.resize(crop, (512, 512)), [:, :, ::-1] / 255 (RGB), − mean, / std, model,
      // argmax(0) ∈ ids, cv2.resize back, soft threshold.
      cv::Mat src(size, size, CV_32FC3, crop.pixels.data()), big;
      cv::resize(src, big, cv::Size(512, 512));
      const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
      cv::Mat chosen(512, 512, CV_32FC1);
      for (int y = 0; y < 512; ++y)
        for (int x = 0; x < 512; ++x) {
          const cv::Vec3f p = big.at<cv::Vec3f>(y, x);
          int best = 0;
          double best_score = -1e30;
          for (int k = 0; k < 19; ++k) {
            const int c = k % 3;
            const double score = (k - 9) / 9.0 * ((p[c] / 255.0 - mean[c]) / std[c]) + 0.1 * (k % 5);
            if (score > best_score) best_score = score, best = k;
          }
          chosen.at<float>(y, x) = std::find(ids.begin(), ids.end(), best) != ids.end() ? 1.f : 0.f;
        }
      cv::Mat back;
      cv::resize(chosen, back, cv::Size(size, size));
      const std::vector<double> want = from_mat(cv_soft_threshold(back));
      double mean_mask = 0;
      for (double v : want) mean_mask += v / want.size();
      EXPECT_GT(mean_mask, 0.05);
      EXPECT_LT(mean_mask, 0.95);
      // A class score within float rounding of another may flip argmax between fswap's float
      // pipeline and this double one; count such pixels instead of requiring none.
      int off = 0;
      for (std::size_t i = 0; i < want.size(); ++i) off += std::abs(got->pixels[i] - want[i]) > 1e-4;
      EXPECT_LT(off, static_cast<int>(want.size() / 1000)) << "max |diff| " << max_diff(*got, want);
    }
  }
}

#endif  // FSWAP_HAVE_OPENCV

// The masker's combination: before the swap min(box, occlusion), after it min(·, area, region).
TEST(FaceMask, MaskerCombinesByMinimum) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  auto engine = make_engine("ort").value();
  // Smooth pictures, so that every mask has blobs rather than noise.
  Image crop(256, 256, 3);
  ImageF swapped(256, 256, 3);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      for (int c = 0; c < 3; ++c) {
        crop.at(x, y, c) = static_cast<std::uint8_t>(127.5f + 120.f * std::sin(x * 0.02f + 2 * c) * std::cos(y * 0.015f));
        swapped.at(x, y, c) = 127.5f + 120.f * std::cos(x * 0.025f - c) * std::sin(y * 0.02f + c);
      }
  std::array<Point2f, 68> lmk;  // a mouth ring around (128, 150)
  for (int i = 0; i < 68; ++i) lmk[i] = {128.f + 70.f * std::cos(i * 0.3f), 150.f + 45.f * std::sin(i * 0.3f)};

  // Each mask alone, FaceFusion's way.
  const ImageF box = create_box_mask(256, 256, 0.5f, {10, 0, 0, 5});
  const ImageF occlusion = FaceOccluder::load(*engine, dir, "xseg_2", {}).value()->mask(crop).value();
  std::vector<Point2f> mouth;
  const std::vector<int> mouth_points = face_mask_area_points("mouth").value();
  for (int i : mouth_points) mouth.push_back(lmk[i]);
  const ImageF area = create_area_mask(256, 256, mouth);
  const ImageF region =
      FaceParser::load(*engine, dir, "bisenet_resnet_34", {}).value()->region_mask(swapped, {1, 2, 3}).value();
  const auto mean = [](const ImageF& m) {
    double t = 0;
    for (float v : m.pixels) t += v;
    return t / m.pixels.size();
  };
  std::printf("mask means: box %.3f, occlusion %.3f, area %.3f, region %.3f\n", mean(box), mean(occlusion), mean(area),
              mean(region));
  for (const ImageF* m : {&occlusion, &area, &region}) EXPECT_GT(mean(*m), 0.05);

  const std::vector<std::vector<std::string>> type_sets = {
      {"box", "occlusion"}, {"box", "area"}, {"box", "region"}, {"occlusion", "region"}, {"box", "occlusion", "area", "region"}};
  for (const auto& types : type_sets) {
    std::string label;
    for (const auto& t : types) label += t + " ";
    SCOPED_TRACE(label);
    FaceMaskOptions o;
    o.types = types;
    o.blur = 0.5f;
    o.padding = {10, 0, 0, 5};
    o.occluder_model = "xseg_2";
    o.regions = {"skin", "left-eyebrow", "right-eyebrow"};
    o.areas = {"mouth"};
    auto masker = FaceMasker::load(*engine, dir, o, {});
    ASSERT_TRUE(masker.is_ok()) << masker.status().to_string();
    auto mask = masker->before_swap(crop);
    ASSERT_TRUE(mask.is_ok()) << mask.status().to_string();
    ASSERT_TRUE(masker->after_swap(swapped, lmk, *mask).is_ok());
    std::vector<double> want(box.pixels.size(), 1.0);
    const auto use = [&](const char* t, const ImageF& m) {
      if (std::find(types.begin(), types.end(), t) == types.end()) return;
      for (std::size_t i = 0; i < want.size(); ++i) want[i] = std::min<double>(want[i], m.pixels[i]);
    };
    use("box", box), use("occlusion", occlusion), use("area", area), use("region", region);
    EXPECT_EQ(max_diff(*mask, want), 0.0);
    std::printf("%s→ combined mean %.3f\n", label.c_str(), mean(*mask));
    if (types.size() == 2) {
      EXPECT_GT(mean(*mask), 0.001);
    }
  }
}

// The occluder and parser replicas on both engines, on a real face crop: their raw outputs (the
// random-weight masks themselves may threshold to nothing), then the masks.
TEST(FaceMaskReplica, OccluderAndParserAgreeOnBothEngines) {
  std::string why;
  const std::string dir = test::swapper_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  const Image crop = resize(fswap::crop(astronaut, Rect{150, 40, 200, 200}), 256, 256, Interp::kBilinear);
  Image bgr = crop;
  for (std::size_t i = 0; i + 2 < bgr.pixels.size(); i += 3) std::swap(bgr.pixels[i], bgr.pixels[i + 2]);
  const Tensor xseg_in = image_to_nhwc(bgr, 0.f, 1.f / 255.f);
  const Tensor parser_in = image_to_nchw(resize(crop, 512, 512, Interp::kBilinear), 127.5f, 1.f / 127.5f);
  const std::vector<int> ids = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18};
  struct Run {
    Tensor xseg, parser;
    ImageF occlusion, region;
  };
  std::vector<Run> runs;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    Run run;
    auto xseg = engine->load(dir + "/xseg_1.onnx", {});
    ASSERT_TRUE(xseg.is_ok()) << xseg.status().to_string();
    run.xseg = std::move((*xseg)->run({xseg_in}).value().at(0));
    auto parser = engine->load(dir + "/bisenet_resnet_34.onnx", {});
    ASSERT_TRUE(parser.is_ok()) << parser.status().to_string();
    run.parser = std::move((*parser)->run({parser_in}).value().at(0));
    run.occlusion = FaceOccluder::load(*engine, dir, "xseg_1", {}).value()->mask(crop).value();
    run.region = FaceParser::load(*engine, dir, "bisenet_resnet_34", {}).value()->region_mask(to_float(crop), ids).value();
    runs.push_back(std::move(run));
  }
  const auto rel = [](const Tensor& a, const Tensor& b) {
    double worst = 0, scale = 0;
    for (std::int64_t i = 0; i < a.elements(); ++i) {
      worst = std::max(worst, double(std::abs(a.data<float>()[i] - b.data<float>()[i])));
      scale = std::max(scale, double(std::abs(a.data<float>()[i])));
    }
    return worst / std::max(scale, 1e-30);
  };
  const auto worst = [](const ImageF& a, const ImageF& b) {
    double w = 0;
    for (std::size_t i = 0; i < a.pixels.size(); ++i) w = std::max(w, double(std::abs(a.pixels[i] - b.pixels[i])));
    return w;
  };
  const double xseg_diff = rel(runs[0].xseg, runs[1].xseg), parser_diff = rel(runs[0].parser, runs[1].parser);
  std::printf("replicas ort vs native: xseg output max |diff|/max %.2e, bisenet %.2e; occlusion mask %.2e, region "
              "mask %.2e\n", xseg_diff, parser_diff, worst(runs[0].occlusion, runs[1].occlusion),
              worst(runs[0].region, runs[1].region));
  EXPECT_LT(xseg_diff, 1e-3);
  EXPECT_LT(parser_diff, 1e-3);
  EXPECT_LT(worst(runs[0].occlusion, runs[1].occlusion), 1e-3);
  EXPECT_LT(worst(runs[0].region, runs[1].region), 1e-3);
}

}  // namespace
}  // namespace fswap
