// Face layer: NMS, alignment, selection, colour transfer, the swapper's geometry, and the
// default models on the sample photos.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "face/analyser.h"
#include "face/face_tracker.h"
#include "face/reference_tracker.h"
#include "face/selector.h"
#include "face/swap_classical.h"
#include "imaging/filter.h"
#include "imaging/transform.h"
#include "support/counting_embedder.h"
#include "video/media.h"

namespace fswap {
namespace {

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

Face face_at(float x1, float y1, float x2, float y2, float score) {
  Face f;
  f.box = {x1, y1, x2, y2};
  f.score = score;
  return f;
}

TEST(Nms, KeepsTheBestOfOverlappingBoxes) {
  std::vector<Face> faces = {face_at(0, 0, 10, 10, 0.6f), face_at(1, 1, 11, 11, 0.9f), face_at(50, 50, 60, 60, 0.7f),
                             face_at(0, 0, 10, 10.5f, 0.5f)};
  const auto kept = non_max_suppression(faces, 0.4f);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.9f);
  EXPECT_FLOAT_EQ(kept[1].score, 0.7f);
  // A loose threshold keeps boxes that overlap only partly.
  EXPECT_EQ(non_max_suppression(faces, 0.99f).size(), 4u);
}

TEST(Iou, KnownValues) {
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {5, 0, 15, 10}), 50.f / 150.f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {20, 20, 30, 30}), 0.f);
}

TEST(Alignment, RecoversAKnownSimilarity) {
  // Put the template through a known similarity; aligning must map the points back exactly.
  const double angle = 0.3, scale = 2.5;
  const Affine known{scale * std::cos(angle), -scale * std::sin(angle), 40, scale * std::sin(angle), scale * std::cos(angle), -7};
  std::array<Point2f, 5> moved;
  for (int i = 0; i < 5; ++i) moved[i] = known.apply(kArcface112Template[i]);
  const Affine back = align_to_template(moved, kArcface112Template);
  for (int i = 0; i < 5; ++i) {
    const Point2f p = back.apply(moved[i]);
    EXPECT_NEAR(p.x, kArcface112Template[i].x, 1e-3);
    EXPECT_NEAR(p.y, kArcface112Template[i].y, 1e-3);
  }
  EXPECT_NEAR(back.scale(), 1 / scale, 1e-6);
}

TEST(Landmarks, FivePointsFrom68) {
  std::array<Point2f, 68> p{};
  for (int i = 0; i < 68; ++i) p[i] = {static_cast<float>(i), static_cast<float>(2 * i)};
  const auto five = landmarks5_from_68(p);
  EXPECT_FLOAT_EQ(five[0].x, (36 + 37 + 38 + 39 + 40 + 41) / 6.f);  // left eye centre
  EXPECT_FLOAT_EQ(five[1].x, (42 + 43 + 44 + 45 + 46 + 47) / 6.f);  // right eye centre
  EXPECT_FLOAT_EQ(five[2].x, 30.f);                                  // nose tip
  EXPECT_FLOAT_EQ(five[3].x, (48 + 60) / 2.f);                       // mouth corners
  EXPECT_FLOAT_EQ(five[4].y, 2 * (54 + 64) / 2.f);
}

SelectorOptions selector(SelectorMode mode, FaceOrder order = FaceOrder::kLargeSmall) {
  SelectorOptions o;
  o.mode = mode;
  o.order = order;
  return o;
}

FaceFilter filter(std::optional<std::string> gender, std::optional<std::string> race, std::optional<int> age_start,
                  std::optional<int> age_end) {
  FaceFilter f;
  f.gender = std::move(gender);
  f.race = std::move(race);
  f.age_start = age_start;
  f.age_end = age_end;
  return f;
}

TEST(Selector, OneAndManyModes) {
  std::vector<Face> faces = {face_at(0, 0, 10, 10, 0.9f), face_at(20, 20, 60, 60, 0.8f), face_at(70, 0, 90, 20, 0.7f)};
  auto one = select_faces(faces, selector(SelectorMode::kOne));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_FLOAT_EQ(one[0].box.x1, 20.f);  // the largest (FaceFusion's default order, large-small)
  auto many = select_faces(faces, selector(SelectorMode::kMany));
  ASSERT_EQ(many.size(), 3u);
  EXPECT_FLOAT_EQ(many[2].box.x1, 0.f);  // largest first
  EXPECT_TRUE(select_faces({}, selector(SelectorMode::kOne)).empty());
  // kOne takes the first face of the chosen order.
  EXPECT_FLOAT_EQ(select_faces(faces, selector(SelectorMode::kOne, FaceOrder::kRightLeft))[0].box.x1, 70.f);
  EXPECT_FLOAT_EQ(select_faces(faces, selector(SelectorMode::kOne, FaceOrder::kWorstBest))[0].score, 0.7f);
  EXPECT_FALSE(parse_selector_mode("sideways").is_ok());
  EXPECT_FLOAT_EQ(face_distance({0, 1}, {0, 1}), 0.f);
  EXPECT_FLOAT_EQ(face_distance({0, 1}, {0.6f, 0.8f}), 0.1f);
}

// FaceFusion's sort_faces_by_order: each order's key and direction; ties keep their order
// (Python's sorted is stable, reverse=True included).
TEST(Selector, OrdersAreFaceFusions) {
  // x1, y1, area and score all differ in order; the last two faces tie on x1, y1 and area.
  const std::vector<Face> faces = {face_at(30, 5, 40, 15, 0.6f), face_at(10, 40, 40, 70, 0.9f),
                                   face_at(50, 20, 70, 40, 0.5f), face_at(50, 20, 70, 40, 0.8f)};
  auto order_of = [&](const char* name) {
    std::vector<float> scores;
    for (const Face& f : sort_faces(faces, parse_face_order(name).value())) scores.push_back(f.score);
    return scores;
  };
  using V = std::vector<float>;
  EXPECT_EQ(order_of("left-right"), (V{0.9f, 0.6f, 0.5f, 0.8f}));
  EXPECT_EQ(order_of("right-left"), (V{0.5f, 0.8f, 0.6f, 0.9f}));
  EXPECT_EQ(order_of("top-bottom"), (V{0.6f, 0.5f, 0.8f, 0.9f}));
  EXPECT_EQ(order_of("bottom-top"), (V{0.9f, 0.5f, 0.8f, 0.6f}));
  EXPECT_EQ(order_of("small-large"), (V{0.6f, 0.5f, 0.8f, 0.9f}));
  EXPECT_EQ(order_of("large-small"), (V{0.9f, 0.5f, 0.8f, 0.6f}));
  EXPECT_EQ(order_of("best-worst"), (V{0.9f, 0.8f, 0.6f, 0.5f}));
  EXPECT_EQ(order_of("worst-best"), (V{0.5f, 0.6f, 0.8f, 0.9f}));
  EXPECT_FALSE(parse_face_order("front-back").is_ok());
}

// FaceFusion's reference face: get_one_face(sorted faces, reference_face_position), the last one
// when the position is past the end.
TEST(Selector, TheReferenceFaceIsThePositionInTheOrder) {
  const std::vector<Face> faces = {face_at(50, 0, 70, 20, 0.6f), face_at(0, 0, 40, 40, 0.9f), face_at(100, 0, 110, 10, 0.5f)};
  SelectorOptions o = selector(SelectorMode::kReference);
  EXPECT_EQ(reference_face(faces, o), 1);  // large-small, position 0: the largest
  o.order = FaceOrder::kLeftRight;
  o.reference_position = 1;
  EXPECT_EQ(reference_face(faces, o), 0);  // the second from the left
  o.reference_position = 7;
  EXPECT_EQ(reference_face(faces, o), 2);  // past the end: the last, the rightmost
  EXPECT_EQ(reference_face({}, o), -1);
  EXPECT_EQ(face_order(faces, FaceOrder::kRightLeft), (std::vector<int>{2, 0, 1}));
}

// FaceFusion's filter_faces_by_gender/_race/_age on constructed classes: exact matches, and ages
// as the overlap of two Python ranges (range(first, last) & range(start, end)).
TEST(Selector, GenderRaceAndAgeFiltersAreFaceFusions) {
  const FaceClasses woman_25 = categorize_face(/*race=*/3, /*gender=*/1, /*age=*/3);  // asian, female, 20–29
  const FaceClasses man_5 = categorize_face(/*race=*/0, /*gender=*/0, /*age=*/1);     // white, male, 3–9
  EXPECT_FALSE(FaceFilter{}.active());
  EXPECT_TRUE(face_passes(woman_25, FaceFilter{}));
  EXPECT_TRUE(face_passes(woman_25, filter("female", {}, {}, {})));
  EXPECT_FALSE(face_passes(man_5, filter("female", {}, {}, {})));
  EXPECT_TRUE(face_passes(man_5, filter("male", "white", {}, {})));
  EXPECT_FALSE(face_passes(woman_25, filter({}, "white", {}, {})));
  EXPECT_TRUE(face_passes(woman_25, filter({}, "asian", {}, {})));
  // range(20, 29) holds 20..28.
  EXPECT_TRUE(face_passes(woman_25, filter({}, {}, 28, 40)));
  EXPECT_FALSE(face_passes(woman_25, filter({}, {}, 29, 40)));  // 29 is not in range(20, 29)
  EXPECT_TRUE(face_passes(woman_25, filter({}, {}, 0, 21)));
  EXPECT_FALSE(face_passes(woman_25, filter({}, {}, 0, 20)));   // range(0, 20) stops at 19
  EXPECT_FALSE(face_passes(woman_25, filter({}, {}, 25, 25)));  // an empty range matches nothing
  // 0 and 0 (or unset) is no age filter, as FaceFusion's `if age_start or age_end`.
  EXPECT_FALSE(filter({}, {}, 0, 0).active());
  EXPECT_FALSE(filter({}, {}, 0, {}).active());
  EXPECT_TRUE(face_passes(woman_25, filter({}, {}, 0, 0)));
  EXPECT_TRUE(filter({}, {}, {}, 30).active());
  // One end set: the other is 0 or 100.
  EXPECT_TRUE(face_passes(man_5, filter({}, {}, {}, 4)));
  EXPECT_FALSE(face_passes(man_5, filter({}, {}, 9, {})));
  EXPECT_TRUE(face_passes(categorize_face(0, 0, 8), filter({}, {}, 99, {})));  // 70–100
  // Every filter must pass; filter_faces keeps the order.
  const std::vector<Face> faces = {face_at(0, 0, 10, 10, 0.1f), face_at(0, 0, 10, 10, 0.2f), face_at(0, 0, 10, 10, 0.3f)};
  const auto kept = filter_faces(faces, {woman_25, man_5, woman_25}, filter("female", {}, 20, {}));
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.1f);
  EXPECT_FLOAT_EQ(kept[1].score, 0.3f);
  EXPECT_TRUE(filter_faces(faces, {woman_25, man_5, woman_25}, filter("male", "black", {}, {})).empty());
  // The flags' values are checked.
  EXPECT_TRUE(validate_face_filter(filter("female", "arabic", 10, 30)).is_ok());
  EXPECT_FALSE(validate_face_filter(filter("other", {}, {}, {})).is_ok());
  EXPECT_FALSE(validate_face_filter(filter({}, "martian", {}, {})).is_ok());
  EXPECT_FALSE(validate_face_filter(filter({}, {}, 50, 40)).is_ok());
  EXPECT_FALSE(validate_face_filter(filter({}, {}, {}, 101)).is_ok());
}

// A frame's faces with FaceTracker's ids, as the pipeline hands them to ReferenceTracker.
std::vector<Face> tracked(FaceTracker& face_tracker, std::vector<Face> faces) {
  face_tracker.assign(faces);
  return faces;
}

TEST(ReferenceTracker, MatchesByIdentityAndEmbedsOnlyNewFaces) {
  ReferenceTracker tracker(selector(SelectorMode::kReference));  // distance 0.3
  tracker.set_reference({0, 1});
  FaceTracker ids;
  test::CountingEmbedder embedder;
  auto embed = [&](Face& f) { return embedder(f); };
  // Two people walking right: the reference (score 0.9) and someone else (0.5).
  for (int frame = 0; frame < 20; ++frame) {
    const float dx = static_cast<float>(frame);
    auto chosen = tracker.match(
        tracked(ids, {face_at(10 + dx, 10, 60 + dx, 60, 0.9f), face_at(100 + dx, 10, 150 + dx, 60, 0.5f)}), embed);
    ASSERT_TRUE(chosen.is_ok());
    ASSERT_EQ(chosen->size(), 1u) << "frame " << frame;
    EXPECT_FLOAT_EQ(chosen->front().score, 0.9f);
  }
  EXPECT_EQ(embedder.calls, 2);  // each person embedded once, on the first frame
  // After kReverifyFrames frames every face is checked again.
  for (int frame = 20; frame < ReferenceTracker::kReverifyFrames; ++frame)
    ASSERT_TRUE(tracker.match(tracked(ids, {face_at(30, 10, 80, 60, 0.9f)}), embed).is_ok());
  EXPECT_EQ(embedder.calls, 3);
}

TEST(ReferenceTracker, AFlickeringDetectionKeepsItsDecision) {
  ReferenceTracker tracker(selector(SelectorMode::kReference));  // distance 0.3
  tracker.set_reference({0, 1});
  FaceTracker ids;
  test::CountingEmbedder embedder;
  auto embed = [&](Face& f) { return embedder(f); };
  for (int frame = 0; frame < 12; ++frame) {
    std::vector<Face> faces = {face_at(10, 10, 60, 60, 0.9f)};
    if (frame % 3 == 0) faces.push_back(face_at(200, 200, 230, 230, 0.5f));  // a false detection, on and off
    auto chosen = tracker.match(tracked(ids, std::move(faces)), embed);
    ASSERT_TRUE(chosen.is_ok());
    EXPECT_EQ(chosen->size(), 1u);
  }
  EXPECT_EQ(embedder.calls, 2);
}

TEST(ReferenceTracker, WithoutAReferenceTheFirstFramesReferenceFaceIsIt) {
  ReferenceTracker tracker(selector(SelectorMode::kReference));  // distance 0.3
  test::CountingEmbedder embedder;
  auto embed = [&](Face& f) { return embedder(f); };
  auto chosen = tracker.match({face_at(0, 0, 10, 10, 0.5f), face_at(50, 50, 100, 100, 0.9f)}, embed);
  ASSERT_TRUE(chosen.is_ok());
  ASSERT_EQ(chosen->size(), 1u);
  EXPECT_FLOAT_EQ(chosen->front().box.x1, 50.f);
  EXPECT_TRUE(tracker.has_reference());
  // With --reference-face-position 1 in left-right order, the right-hand face is the reference.
  SelectorOptions second = selector(SelectorMode::kReference);
  second.order = FaceOrder::kLeftRight;
  second.reference_position = 1;
  ReferenceTracker right(second);
  auto picked = right.match({face_at(0, 0, 40, 40, 0.5f), face_at(50, 50, 60, 60, 0.9f)}, embed);
  ASSERT_TRUE(picked.is_ok());
  ASSERT_EQ(picked->size(), 1u);
  EXPECT_FLOAT_EQ(picked->front().box.x1, 50.f);
}

TEST(ColourTransfer, MatchesTheReferenceStatisticsInsideTheMask) {
  Image image(64, 64, 3), reference(64, 64, 3);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> noise(-20, 20);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      const int n = noise(rng);
      image.at(x, y, 0) = static_cast<std::uint8_t>(90 + n), image.at(x, y, 1) = 120, image.at(x, y, 2) = 200;
      reference.at(x, y, 0) = static_cast<std::uint8_t>(200 + n / 2), reference.at(x, y, 1) = 150, reference.at(x, y, 2) = 110;
    }
  ImageF mask(64, 64, 1, 1.f);
  transfer_colour(image, reference, mask, 1.f);
  const ImageF a = rgb_to_lab(image), b = rgb_to_lab(reference);
  for (int c = 0; c < 3; ++c) {
    double ma = 0, mb = 0;
    for (int i = 0; i < 64 * 64; ++i) ma += a.pixels[i * 3 + c], mb += b.pixels[i * 3 + c];
    EXPECT_NEAR(ma / 4096, mb / 4096, 1.5) << "channel " << c;
  }
}

TEST(SwapGeometry, BoundaryPointsSurroundTheLandmarks) {
  std::array<Point2f, 68> p{};
  for (int i = 0; i < 68; ++i) p[i] = {100.f + i % 10 * 10, 200.f + i / 10 * 10};  // box 100..190 × 200..260
  const auto b = face_boundary_points(p, 0.25f);
  ASSERT_EQ(b.size(), 8u);
  EXPECT_FLOAT_EQ(b[0].x, 100 - 90 * 0.25f);
  EXPECT_FLOAT_EQ(b[0].y, 200 - 60 * 0.25f);
  EXPECT_FLOAT_EQ(b[4].x, 190 + 90 * 0.25f);
  EXPECT_FLOAT_EQ(b[4].y, 260 + 60 * 0.25f);
}

class DefaultModels : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = std::move(make_engine("ort").value());
    AnalyserOptions o;
    o.models_dir = kModels;
    auto a = FaceAnalyser::load(*engine_, o);
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    analyser_ = std::move(*a);
  }
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<FaceAnalyser> analyser_;
};

TEST_F(DefaultModels, FindsTheAstronautsFaceWithSensibleLandmarks) {
  const Image image = read_image(kMedia + "astronaut.png").value();
  auto faces = analyser_->analyse(image, /*embed=*/true);
  ASSERT_TRUE(faces.is_ok());
  ASSERT_EQ(faces->size(), 1u);
  const Face& f = faces->front();
  // MODELS.md: score 1.000 at (0.35,0.12)-(0.52,0.34) of the 512×512 image.
  EXPECT_GT(f.score, 0.95f);
  EXPECT_NEAR(f.box.x1 / 512, 0.35, 0.03);
  EXPECT_NEAR(f.box.y2 / 512, 0.34, 0.03);
  // Landmark sanity: eyes above the nose tip, nose above the mouth, left eye left of the right.
  EXPECT_LT(f.landmarks5[0].x, f.landmarks5[1].x);
  EXPECT_LT(f.landmarks5[0].y, f.landmarks5[2].y);
  EXPECT_LT(f.landmarks5[2].y, f.landmarks5[3].y);
  for (const auto& p : f.landmarks68) {
    EXPECT_GT(p.x, f.box.x1 - f.box.width() * 0.2f);
    EXPECT_LT(p.x, f.box.x2 + f.box.width() * 0.2f);
  }
  ASSERT_EQ(f.embedding.size(), 512u);
  EXPECT_NEAR(embedding_similarity(f.embedding, f.embedding), 1.f, 1e-4);
  EXPECT_GT(frontality(f), 0.7f);
}

// analyse() is detect() then add_landmarks(): the halves give the same faces, and detect()
// leaves the landmarks to add_landmarks.
TEST_F(DefaultModels, DetectThenAddLandmarksIsAnalyse) {
  const Image image = read_image(kMedia + "messi5.jpg").value();
  const std::vector<Face> whole = analyser_->analyse(image, /*embed=*/false).value();
  std::vector<Face> halves = analyser_->detect(image).value();
  ASSERT_FALSE(halves.empty());
  for (const Face& f : halves) EXPECT_FALSE(f.has_landmarks);
  ASSERT_TRUE(analyser_->add_landmarks(image, halves).is_ok());
  ASSERT_EQ(halves.size(), whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(halves[i].box, whole[i].box);
    ASSERT_TRUE(halves[i].has_landmarks);
    for (std::size_t k = 0; k < 68; ++k) {
      EXPECT_EQ(halves[i].landmarks68[k].x, whole[i].landmarks68[k].x);
      EXPECT_EQ(halves[i].landmarks68[k].y, whole[i].landmarks68[k].y);
    }
  }
  // Faces that have landmarks keep them: only those without are landmarked (a landmark thread's
  // call cut short by the device's memory is finished by the analysis).
  std::vector<Face> rest = analyser_->detect(image).value();
  rest[0] = halves[0];
  rest[0].landmarks68[0] = {-7, -7};
  ASSERT_TRUE(analyser_->add_landmarks(image, rest).is_ok());
  ASSERT_EQ(rest.size(), whole.size());
  EXPECT_EQ(rest[0].landmarks68[0].x, -7);
  for (std::size_t i = 1; i < rest.size(); ++i) EXPECT_EQ(rest[i].landmarks68[0].x, whole[i].landmarks68[0].x);
  // Several frames in one call: each frame's faces as alone.
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  std::vector<Face> first = analyser_->detect(image).value(), second = analyser_->detect(astronaut).value();
  const std::vector<FrameFaces> frames = {{&image, &first}, {&astronaut, &second}};
  ASSERT_TRUE(analyser_->add_landmarks(frames).is_ok());
  const std::vector<Face> alone = analyser_->analyse(astronaut, /*embed=*/false).value();
  ASSERT_EQ(first.size(), whole.size());
  ASSERT_EQ(second.size(), alone.size());
  for (std::size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(first[i].landmarks68[30].x, whole[i].landmarks68[30].x);
  for (std::size_t i = 0; i < alone.size(); ++i) EXPECT_EQ(second[i].landmarks68[30].y, alone[i].landmarks68[30].y);
}

TEST_F(DefaultModels, EmbeddingSeparatesPeopleAndSurvivesAMove) {
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  const Image messi = read_image(kMedia + "messi5.jpg").value();
  auto a = analyser_->analyse(astronaut, true).value();
  auto m = analyser_->analyse(messi, true).value();
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(m.empty());
  // The same photo scaled and shifted is the same person; another photo is not.
  const Affine move{0.8, 0, 40, 0, 0.8, 30};
  const Image moved = warp_affine(astronaut, move, 512, 512, Border::kReplicate);
  auto a2 = analyser_->analyse(moved, true).value();
  ASSERT_FALSE(a2.empty());
  const float same = embedding_similarity(a[0].embedding, a2[0].embedding);
  const float other = embedding_similarity(a[0].embedding, m[0].embedding);
  std::printf("similarity: same person %.3f, different people %.3f\n", same, other);
  EXPECT_GT(same, 0.8f);
  EXPECT_LT(other, 0.4f);
}

TEST_F(DefaultModels, BlazeFaceFindsTheSameFace) {
  auto blaze = make_face_detector("blazeface", *engine_, kModels, {});
  ASSERT_TRUE(blaze.is_ok()) << blaze.status().to_string();
  const Image image = read_image(kMedia + "astronaut.png").value();
  auto faces = (*blaze)->detect(image, {});
  ASSERT_TRUE(faces.is_ok());
  ASSERT_FALSE(faces->empty());
  auto fr = analyser_->analyse(image, false).value();
  EXPECT_GT(iou(faces->front().box, fr.front().box), 0.4f);
  ASSERT_EQ(faces->front().keypoints.size(), 6u);
  // Keypoint 0 and 1 are the eyes: inside the box, upper half.
  EXPECT_GT(faces->front().keypoints[0].y, faces->front().box.y1);
  EXPECT_LT(faces->front().keypoints[0].y, faces->front().box.centre().y);
}

TEST_F(DefaultModels, SwapChangesOnlyTheFaceRegion) {
  const Image source = read_image(kMedia + "astronaut.png").value();
  Image target = read_image(kMedia + "messi5.jpg").value();
  const Image original = target;
  auto sf = analyser_->analyse(source, false).value();
  auto tf = analyser_->analyse(target, false).value();
  ASSERT_FALSE(sf.empty());
  ASSERT_FALSE(tf.empty());
  auto swapper = ClassicalSwapper::create(source, sf[best_source_face(sf)]);
  ASSERT_TRUE(swapper.is_ok());
  swapper->swap(target, tf[0], {});
  // Pixels far from the face are bit-exact; pixels at the face changed.
  const FaceBox& b = tf[0].box;
  long changed_far = 0, changed_face = 0;
  for (int y = 0; y < target.height; ++y)
    for (int x = 0; x < target.width; ++x) {
      const bool differs = std::memcmp(&target.at(x, y), &original.at(x, y), 3) != 0;
      const bool far = x < b.x1 - b.width() || x > b.x2 + b.width() || y < b.y1 - b.height() || y > b.y2 + b.height();
      changed_far += differs && far;
      changed_face += differs && !far;
    }
  EXPECT_EQ(changed_far, 0);
  EXPECT_GT(changed_face, static_cast<long>(b.area() * 0.3f));
}

TEST(Detector, UnknownNameIsAnError) {
  auto engine = make_engine("ort").value();
  auto d = make_face_detector("yolo9000", *engine, kModels, {});
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidInput);
  auto missing = make_face_detector("fr_detect", *engine, "/nonexistent", {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fswap
