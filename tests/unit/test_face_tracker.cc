// FaceTracker's ids over frames (moving, crossing, leaving and followed faces), and the per-face
// temporal steps keyed by them: ReferenceTracker's decisions and LandmarkSmoother's filter state.
#include <gtest/gtest.h>

#include <cmath>

#include "face/analyser.h"
#include "face/face_tracker.h"
#include "face/landmark_smoother.h"
#include "face/reference_tracker.h"
#include "imaging/transform.h"
#include "support/counting_embedder.h"
#include "video/media.h"

namespace fswap {
namespace {

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

Face face_at(float x1, float y1, float x2, float y2, float score = 0.9f) {
  Face f;
  f.box = {x1, y1, x2, y2};
  f.score = score;
  return f;
}

// A 100×100 face whose left edge is at x.
Face face_x(float x) { return face_at(x, 0, x + 100, 100); }

std::vector<int> ids_of(const std::vector<Face>& faces) {
  std::vector<int> ids;
  for (const Face& f : faces) ids.push_back(f.track_id);
  return ids;
}

TEST(FaceTracker, IdsStayWithMovingFaces) {
  FaceTracker tracker;
  for (int frame = 0; frame < 50; ++frame) {
    const float dx = 8.f * static_cast<float>(frame);  // IoU 0.85 from frame to frame
    std::vector<Face> faces = {face_at(10 + dx, 10, 110 + dx, 110), face_at(600 - dx, 300, 700 - dx, 400)};
    if (frame % 2) std::swap(faces[0], faces[1]);  // the detector's order changes; the ids do not
    tracker.assign(faces);
    const int left = frame % 2 ? faces[1].track_id : faces[0].track_id;
    const int right = frame % 2 ? faces[0].track_id : faces[1].track_id;
    ASSERT_EQ(left, 0) << "frame " << frame;
    ASSERT_EQ(right, 1) << "frame " << frame;
  }
  EXPECT_EQ(tracker.track_count(), 2u);
}

TEST(FaceTracker, CrossingFacesKeepTheirIds) {
  // A walks right and B left, 10 px a frame, B 20 px lower: they overlap each other for ten
  // frames and come out on the other side. Around the crossing each face overlaps the other's
  // track by 0.61 (above the threshold) and its own by 0.82: the best pairs keep the ids.
  ASSERT_GT(iou(face_x(160).box, face_at(155, 20, 255, 120).box), 0.5f);  // A at t = 16, B at t = 15
  FaceTracker tracker;
  for (int t = 0; t < 31; ++t) {
    std::vector<Face> faces = {face_x(10.f * t), face_at(305.f - 10.f * t, 20, 405.f - 10.f * t, 120)};
    tracker.assign(faces);
    ASSERT_EQ(ids_of(faces), (std::vector<int>{0, 1})) << "frame " << t << ": A at " << faces[0].box.x1;
  }
  EXPECT_EQ(tracker.track_count(), 2u);
}

TEST(FaceTracker, TheHighestIouPairIsTakenFirst) {
  FaceTracker tracker;
  std::vector<Face> first = {face_x(0), face_x(40)};  // tracks 0 and 1
  tracker.assign(first);
  // Face p overlaps track 0 by 0.74 and track 1 by 0.60; face q overlaps track 0 by 0.90 (and
  // track 1 by 0.48, below the threshold). Taking each face's best in order would give p track 0
  // and leave q new; the best pair first gives q track 0 and p track 1.
  std::vector<Face> faces = {face_x(15), face_x(5)};
  ASSERT_GT(iou(faces[1].box, first[0].box), iou(faces[0].box, first[0].box));
  ASSERT_GT(iou(faces[0].box, first[1].box), 0.5f);
  ASSERT_LT(iou(faces[1].box, first[1].box), 0.5f);
  tracker.assign(faces);
  EXPECT_EQ(ids_of(faces), (std::vector<int>{1, 0}));
  EXPECT_EQ(tracker.track_count(), 2u);
}

TEST(FaceTracker, AFaceGoneLongerThanMaxMissedReturnsWithANewId) {
  FaceTracker tracker({.min_iou = 0.5f, .max_missed_frames = 3});
  const auto frame_with = [&](std::vector<Face> faces) {
    tracker.assign(faces);
    return ids_of(faces);
  };
  EXPECT_EQ(frame_with({face_x(0)}), std::vector<int>{0});
  for (int t = 0; t < 3; ++t) frame_with({});  // gone for max_missed_frames: kept
  EXPECT_EQ(tracker.track_count(), 1u);
  EXPECT_EQ(frame_with({face_x(5)}), std::vector<int>{0});
  for (int t = 0; t < 4; ++t) frame_with({});  // gone for longer: dropped
  EXPECT_EQ(tracker.track_count(), 0u);
  EXPECT_EQ(frame_with({face_x(5)}), std::vector<int>{1});
  // Ids are never reused: after track 1 is dropped too, the next face is 2.
  for (int t = 0; t < 4; ++t) frame_with({});
  EXPECT_EQ(frame_with({face_x(500)}), std::vector<int>{2});
}

TEST(FaceTracker, AFaceCarryingALiveIdKeepsItWhateverItsBox) {
  FaceTracker tracker;
  std::vector<Face> faces = {face_x(0), face_x(300)};
  tracker.assign(faces);
  ASSERT_EQ(ids_of(faces), (std::vector<int>{0, 1}));
  // As FaceAnalyser::follow hands them on: track 0's face jumped far (no overlap with its track),
  // onto track 1's place; a detected face (no id) stays where track 0 was.
  Face followed = face_x(305);
  followed.track_id = 0;
  std::vector<Face> next = {face_x(2), followed};
  tracker.assign(next);
  EXPECT_EQ(next[1].track_id, 0);
  EXPECT_EQ(next[0].track_id, 2);  // track 0 is taken; track 1 does not overlap it
  // An id no live track has (or a second claim on one) is not kept: that face is associated by IoU.
  Face stale = face_x(303);
  stale.track_id = 42;
  Face second_claim = face_x(4);
  second_claim.track_id = 0;
  Face first_claim = face_x(1000);
  first_claim.track_id = 0;
  std::vector<Face> last = {first_claim, stale, second_claim};
  tracker.assign(last);
  EXPECT_EQ(ids_of(last), (std::vector<int>{0, 1, 2}));
}

// FaceAnalyser::follow on the default models: the followed face keeps its id through FaceTracker.
TEST(FaceTracker, FollowedFacesKeepTheirIds) {
  auto engine = make_engine("ort");
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  AnalyserOptions options;
  options.models_dir = kModels;
  auto analyser = FaceAnalyser::load(**engine, options);
  ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
  const Image frame0 = read_image(kMedia + "astronaut.png").value();
  const Image frame1 = warp_affine(frame0, Affine{1, 0, 12, 0, 1, 8}, 512, 512, Border::kReplicate);
  FaceTracker tracker;
  std::vector<Face> detected = (*analyser)->analyse(frame0, /*embed=*/false).value();
  ASSERT_EQ(detected.size(), 1u);
  Face made_up = face_at(400, 400, 480, 480);  // a second face to follow, its landmarks at its centre
  made_up.has_landmarks = true;
  made_up.landmarks68.fill(made_up.box.centre());
  detected.push_back(made_up);
  tracker.assign(detected);
  ASSERT_EQ(ids_of(detected), (std::vector<int>{0, 1}));
  std::vector<Face> followed = (*analyser)->follow(frame1, {detected[1], detected[0]}).value();
  ASSERT_EQ(ids_of(followed), (std::vector<int>{1, 0}));
  EXPECT_NEAR(followed[1].box.x1 - detected[0].box.x1, 12.f, 4.f);  // it moved with the face
  tracker.assign(followed);
  EXPECT_EQ(ids_of(followed), (std::vector<int>{1, 0}));
  EXPECT_EQ(tracker.track_count(), 2u);
}

Face with_id(Face f, int id) {
  f.track_id = id;
  return f;
}

TEST(FaceTracker, ReferenceDecisionsFollowTheId) {
  SelectorOptions options;
  options.mode = SelectorMode::kReference;
  ReferenceTracker reference(options);
  reference.set_reference({0, 1});
  test::CountingEmbedder embedder;
  auto embed = [&](Face& f) { return embedder(f); };
  // Frame 0: id 0 is the reference person, id 1 is not; both embedded.
  auto chosen = reference.match({with_id(face_x(0), 0), with_id(face_at(300, 0, 400, 100, 0.5f), 1)}, embed);
  ASSERT_TRUE(chosen.is_ok());
  ASSERT_EQ(ids_of(*chosen), std::vector<int>{0});
  EXPECT_EQ(embedder.calls, 2);
  // Then the two swap places, and id 0 would no longer pass as the reference (score 0.5): the
  // decisions stay with the ids, without an embedding, until the re-check.
  for (int frame = 1; frame < ReferenceTracker::kReverifyFrames - 1; ++frame) {
    chosen = reference.match({with_id(face_at(300, 0, 400, 100, 0.5f), 0), with_id(face_x(0), 1)}, embed);
    ASSERT_TRUE(chosen.is_ok());
    ASSERT_EQ(ids_of(*chosen), std::vector<int>{0}) << "frame " << frame;
  }
  EXPECT_EQ(embedder.calls, 2);
  chosen = reference.match({with_id(face_at(300, 0, 400, 100, 0.5f), 0), with_id(face_x(0), 1)}, embed);
  ASSERT_TRUE(chosen.is_ok());
  EXPECT_EQ(ids_of(*chosen), std::vector<int>{1});  // re-checked: now id 1 is the reference person
  EXPECT_EQ(embedder.calls, 4);
  // A face without an id is embedded on every frame.
  for (int frame = 0; frame < 3; ++frame) ASSERT_TRUE(reference.match({face_x(0)}, embed).is_ok());
  EXPECT_EQ(embedder.calls, 7);
}

// A 68-point face: a ring of points around (cx, cy), its box around them.
Face landmarked_face(float cx, float cy, int id) {
  Face f = face_at(cx - 60, cy - 70, cx + 60, cy + 70);
  f.has_landmarks = true;
  for (int i = 0; i < 68; ++i) {
    const float angle = 2.f * 3.14159265f * static_cast<float>(i) / 68;
    f.landmarks68[i] = {cx + 50 * std::cos(angle), cy + 60 * std::sin(angle)};
  }
  f.landmarks5 = landmarks5_from_68(f.landmarks68);
  f.track_id = id;
  return f;
}

TEST(FaceTracker, LandmarkSmootherStateFollowsTheId) {
  LandmarkSmoother smoother;
  for (int t = 0; t < 10; ++t) {
    std::vector<Face> faces = {landmarked_face(100, 100, 0)};
    smoother.smooth(faces);
  }
  // Two faces with the same box and points, 2 px right of where id 0 was: id 0's filter holds
  // it back (a slow move is mostly jitter); id 1 is new, so it passes through unchanged.
  std::vector<Face> faces = {landmarked_face(102, 100, 0), landmarked_face(102, 100, 1)};
  smoother.smooth(faces);
  EXPECT_LT(faces[0].landmarks68[0].x, 151.5f);
  EXPECT_GT(faces[0].landmarks68[0].x, 150.f);
  EXPECT_EQ(faces[1].landmarks68[0].x, 152.f);
  EXPECT_EQ(smoother.track_count(), 2u);
  // A face without an id keeps no state: unchanged, frame after frame.
  for (int t = 0; t < 3; ++t) {
    std::vector<Face> untracked = {landmarked_face(500.f + 5 * t, 100, -1)};
    smoother.smooth(untracked);
    EXPECT_EQ(untracked[0].landmarks68[0].x, 550.f + 5 * t);
  }
  EXPECT_EQ(smoother.track_count(), 2u);
}

}  // namespace
}  // namespace fswap
