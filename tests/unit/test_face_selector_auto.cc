// FaceFusion's --face-selector-gender auto / --face-selector-race auto (face_selector.py::
// sort_and_filter_faces): the largest source face's gender and race become the filter.
#include <gtest/gtest.h>

#include "face/selector.h"

namespace fswap {
namespace {

Face face_with_box(float x1, float y1, float x2, float y2) {
  Face f;
  f.box = {x1, y1, x2, y2};
  return f;
}

FaceClasses classes(const char* gender, const char* race, int age_first, int age_last) {
  FaceClasses c;
  c.gender = gender;
  c.race = race;
  c.age_first = age_first;
  c.age_last = age_last;
  return c;
}

TEST(FaceSelectorAuto, LargestFaceIsTheLargestBoxFirstOfEquals) {
  EXPECT_EQ(largest_face({}), -1);
  const std::vector<Face> faces = {face_with_box(0, 0, 10, 10), face_with_box(50, 50, 70, 65),  // 100, 300
                                   face_with_box(5, 5, 25, 20), face_with_box(100, 0, 120, 15)};  // 300, 300
  EXPECT_EQ(largest_face(faces), 1);
  EXPECT_EQ(largest_face({faces[0]}), 0);
}

TEST(FaceSelectorAuto, AutoTakesTheSourceFacesGenderAndRace) {
  const FaceClasses source = classes("female", "asian", 20, 30);
  FaceFilter both;
  both.gender = "auto";
  both.race = "auto";
  both.age_start = 10;
  ASSERT_TRUE(validate_face_filter(both).is_ok());
  EXPECT_TRUE(both.wants_source());
  auto resolved = resolve_auto_filter(both, source);
  ASSERT_TRUE(resolved.is_ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->gender, "female");
  EXPECT_EQ(resolved->race, "asian");
  EXPECT_EQ(resolved->age_start, 10);
  EXPECT_FALSE(resolved->age_end.has_value());
  EXPECT_FALSE(resolved->wants_source());

  // Only the auto member is replaced.
  FaceFilter race_only;
  race_only.gender = "male";
  race_only.race = "auto";
  resolved = resolve_auto_filter(race_only, source);
  ASSERT_TRUE(resolved.is_ok());
  EXPECT_EQ(resolved->gender, "male");
  EXPECT_EQ(resolved->race, "asian");
  FaceFilter gender_only;
  gender_only.gender = "auto";
  resolved = resolve_auto_filter(gender_only, source);
  ASSERT_TRUE(resolved.is_ok());
  EXPECT_EQ(resolved->gender, "female");
  EXPECT_FALSE(resolved->race.has_value());

  // The resolved filter keeps the targets that share the source's classes.
  // (The age filter, 10.., still applies.)
  const std::vector<Face> targets = {face_with_box(0, 0, 10, 10), face_with_box(20, 0, 30, 10),
                                     face_with_box(40, 0, 50, 10), face_with_box(60, 0, 70, 10)};
  const std::vector<FaceClasses> target_classes = {
      classes("female", "white", 20, 30), classes("female", "asian", 30, 40), classes("male", "asian", 20, 30),
      classes("female", "asian", 3, 10)};
  resolved = resolve_auto_filter(both, source);
  const std::vector<Face> kept = filter_faces(targets, target_classes, *resolved);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].box.x1, 20.f);
}

TEST(FaceSelectorAuto, AutoWithoutASourceFaceIsAClearError) {
  FaceFilter filter;
  filter.race = "auto";
  auto r = resolve_auto_filter(filter, std::nullopt);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("--face-selector-race auto"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("no source face"), std::string::npos) << r.status().message();
  filter.gender = "auto";
  r = resolve_auto_filter(filter, std::nullopt);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("--face-selector-gender auto"), std::string::npos) << r.status().message();

  // A filter without auto needs no source and comes back unchanged.
  FaceFilter plain;
  plain.gender = "male";
  plain.age_end = 40;
  auto same = resolve_auto_filter(plain, std::nullopt);
  ASSERT_TRUE(same.is_ok());
  EXPECT_EQ(same->gender, "male");
  EXPECT_EQ(same->age_end, 40);
  EXPECT_FALSE(same->race.has_value());
}

TEST(FaceSelectorAuto, ValidationAcceptsAutoAndStillRefusesUnknownNames) {
  FaceFilter f;
  f.gender = "auto";
  EXPECT_TRUE(validate_face_filter(f).is_ok());
  f.race = "auto";
  EXPECT_TRUE(validate_face_filter(f).is_ok());
  f.gender = "other";
  const Status bad_gender = validate_face_filter(f);
  EXPECT_FALSE(bad_gender.is_ok());
  EXPECT_NE(bad_gender.message().find("female, male, auto"), std::string::npos);
  f.gender = "female";
  f.race = "martian";
  const Status bad_race = validate_face_filter(f);
  EXPECT_FALSE(bad_race.is_ok());
  EXPECT_NE(bad_race.message().find("arabic, auto"), std::string::npos);
}

}  // namespace
}  // namespace fswap
