#include "server/job_options.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "face/enhancer.h"
#include "face/frame_enhancer.h"
#include "face/swapper_facefusion.h"

namespace fswap::server {
namespace {

using nlohmann::json;

const std::set<std::string> kSelectorModes = {"one", "many", "reference"};
const std::set<std::string> kPresets = {"ultrafast", "superfast", "veryfast", "faster", "fast",
                                        "medium",    "slow",      "slower",   "veryslow"};
const std::set<std::string> kEngines = {"auto", "ort", "native"};
std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& v : s) out += (out.empty() ? "" : ", ") + v;
  return out;
}

const std::set<std::string> kOrders = {"left-right",  "right-left",  "top-bottom", "bottom-top",
                                       "small-large", "large-small", "best-worst", "worst-best"};
const std::set<std::string> kGenders = {"female", "male", "auto"};
const std::set<std::string> kRaces = {"white", "black", "latino", "asian", "indian", "arabic", "auto"};
const std::set<std::string> kProcessors = {"face_swapper", "face_enhancer", "frame_enhancer"};

const std::set<std::string>& swapper_models() {
  static const std::set<std::string> names = [] {
    std::set<std::string> s(face_swapper_model_names().begin(), face_swapper_model_names().end());
    s.insert("classical");
    return s;
  }();
  return names;
}

const std::set<std::string>& enhancer_models() {
  static const std::set<std::string> names(face_enhancer_model_names().begin(), face_enhancer_model_names().end());
  return names;
}

const std::set<std::string>& frame_enhancer_models() {
  static const std::set<std::string> names(frame_enhancer_model_names().begin(), frame_enhancer_model_names().end());
  return names;
}

// A non-empty array of distinct processor names.
Status read_processors(const json& j, std::vector<std::string>& out) {
  if (!j.contains("processors")) return Status::ok();
  const json& v = j["processors"];
  std::vector<std::string> names;
  if (v.is_array())
    for (const json& e : v)
      if (e.is_string() && kProcessors.count(e.get<std::string>()) &&
          std::find(names.begin(), names.end(), e.get<std::string>()) == names.end())
        names.push_back(e.get<std::string>());
  if (!v.is_array() || names.empty() || names.size() != v.size())
    return invalid_input("option processors: expected a non-empty array of distinct names from " + join(kProcessors));
  out = std::move(names);
  return Status::ok();
}


Status read_choice(const json& j, const char* key, const std::set<std::string>& allowed, std::string& out) {
  if (!j.contains(key)) return Status::ok();
  if (!j[key].is_string() || !allowed.count(j[key].get<std::string>()))
    return invalid_input(std::string("option ") + key + ": expected one of " + join(allowed));
  out = j[key].get<std::string>();
  return Status::ok();
}

Status read_unit(const json& j, const char* key, float& out) {
  if (!j.contains(key)) return Status::ok();
  if (!j[key].is_number() || j[key].get<double>() < 0 || j[key].get<double>() > 1)
    return invalid_input(std::string("option ") + key + ": expected a number from 0 to 1");
  out = j[key].get<float>();
  return Status::ok();
}

Status read_number(const json& j, const char* key, double lo, double hi, double& out) {
  if (!j.contains(key)) return Status::ok();
  if (!j[key].is_number() || !(j[key].get<double>() >= lo && j[key].get<double>() <= hi))
    return invalid_input(std::string("option ") + key + ": expected a number from " + json(lo).dump() + " to " +
                         json(hi).dump());
  out = j[key].get<double>();
  return Status::ok();
}

template <class Int>
Status read_int(const json& j, const char* key, std::int64_t lo, std::int64_t hi, Int& out) {
  if (!j.contains(key)) return Status::ok();
  if (!j[key].is_number_integer() || j[key].get<std::int64_t>() < lo || j[key].get<std::int64_t>() > hi)
    return invalid_input(std::string("option ") + key + ": expected an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
  out = static_cast<Int>(j[key].get<std::int64_t>());
  return Status::ok();
}

}  // namespace

Result<JobOptions> parse_job_options(const std::string& text) {
  JobOptions o;
  if (text.empty()) return o;
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_input("options: expected a JSON object");
  static const std::set<std::string> kKeys = {
      "face_selector_mode",   "reference_face_distance", "face_detector_score", "face_mask_blur",
      "output_video_quality", "output_video_preset",     "trim_frame_start",    "trim_frame_end",
      "engine",               "face_swapper_model",      "processors",          "face_enhancer_model",
      "face_enhancer_blend",  "frame_enhancer_model",    "frame_enhancer_blend", "face_selector_order",
      "face_selector_gender", "face_selector_race",      "face_selector_age_start", "face_selector_age_end",
      "reference_face_position", "reference_frame_number", "output_video_scale", "output_video_fps",
      "output_image_scale", "output_audio_volume", "output_audio_quality"};
  for (const auto& [key, value] : j.items())
    if (!kKeys.count(key)) return invalid_input("options: unknown key '" + key + "' (known: " + join(kKeys) + ")");
  constexpr std::int64_t kMaxFrame = std::int64_t{1} << 40;
  FSWAP_RETURN_IF_ERROR(read_choice(j, "face_selector_mode", kSelectorModes, o.face_selector_mode));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "face_selector_order", kOrders, o.face_selector_order));
  std::string gender, race;
  FSWAP_RETURN_IF_ERROR(read_choice(j, "face_selector_gender", kGenders, gender));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "face_selector_race", kRaces, race));
  if (!gender.empty()) o.face_selector_filter.gender = gender;
  if (!race.empty()) o.face_selector_filter.race = race;
  int age = 0;
  if (j.contains("face_selector_age_start")) {
    FSWAP_RETURN_IF_ERROR(read_int(j, "face_selector_age_start", 0, 100, age));
    o.face_selector_filter.age_start = age;
  }
  if (j.contains("face_selector_age_end")) {
    FSWAP_RETURN_IF_ERROR(read_int(j, "face_selector_age_end", 0, 100, age));
    o.face_selector_filter.age_end = age;
  }
  if (Status s = validate_face_filter(o.face_selector_filter); !s.is_ok()) return invalid_input("options: " + s.message());
  FSWAP_RETURN_IF_ERROR(read_unit(j, "reference_face_distance", o.reference_face_distance));
  FSWAP_RETURN_IF_ERROR(read_int(j, "reference_face_position", 0, 1000, o.reference_face_position));
  FSWAP_RETURN_IF_ERROR(read_int(j, "reference_frame_number", -1, kMaxFrame, o.reference_frame_number));
  FSWAP_RETURN_IF_ERROR(read_unit(j, "face_detector_score", o.face_detector_score));
  FSWAP_RETURN_IF_ERROR(read_unit(j, "face_mask_blur", o.face_mask_blur));
  FSWAP_RETURN_IF_ERROR(read_int(j, "output_video_quality", 0, 100, o.output_video_quality));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "output_video_preset", kPresets, o.output_video_preset));
  FSWAP_RETURN_IF_ERROR(read_number(j, "output_video_scale", 0.25, 8, o.output_video_scale));
  FSWAP_RETURN_IF_ERROR(read_number(j, "output_video_fps", 0, 1000, o.output_video_fps));
  FSWAP_RETURN_IF_ERROR(read_number(j, "output_image_scale", 0.25, 8, o.output_image_scale));
  FSWAP_RETURN_IF_ERROR(read_int(j, "output_audio_volume", 0, 100, o.output_audio_volume));
  FSWAP_RETURN_IF_ERROR(read_int(j, "output_audio_quality", -1, 100, o.output_audio_quality));
  FSWAP_RETURN_IF_ERROR(read_int(j, "trim_frame_start", 0, kMaxFrame, o.trim_frame_start));
  FSWAP_RETURN_IF_ERROR(read_int(j, "trim_frame_end", -1, kMaxFrame, o.trim_frame_end));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "engine", kEngines, o.engine));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "face_swapper_model", swapper_models(), o.face_swapper_model));
  FSWAP_RETURN_IF_ERROR(read_processors(j, o.processors));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "face_enhancer_model", enhancer_models(), o.face_enhancer_model));
  FSWAP_RETURN_IF_ERROR(read_int(j, "face_enhancer_blend", 0, 100, o.face_enhancer_blend));
  FSWAP_RETURN_IF_ERROR(read_choice(j, "frame_enhancer_model", frame_enhancer_models(), o.frame_enhancer_model));
  FSWAP_RETURN_IF_ERROR(read_int(j, "frame_enhancer_blend", 0, 100, o.frame_enhancer_blend));
  if (o.trim_frame_end >= 0 && o.trim_frame_end <= o.trim_frame_start)
    return invalid_input("options: trim_frame_end must be greater than trim_frame_start (or -1 for the end)");
  return o;
}

std::string JobOptions::to_json() const {
  json j = {{"face_selector_mode", face_selector_mode},
                  {"face_selector_order", face_selector_order},
                  {"reference_face_distance", reference_face_distance},
                  {"reference_face_position", reference_face_position},
                  {"reference_frame_number", reference_frame_number},
                  {"face_detector_score", face_detector_score},
                  {"face_mask_blur", face_mask_blur},
                  {"output_video_quality", output_video_quality},
                  {"output_video_preset", output_video_preset},
                  {"output_video_scale", output_video_scale},
                  {"output_video_fps", output_video_fps},
                  {"output_image_scale", output_image_scale},
                  {"output_audio_volume", output_audio_volume},
                  {"output_audio_quality", output_audio_quality},
                  {"trim_frame_start", trim_frame_start},
                  {"trim_frame_end", trim_frame_end},
                  {"engine", engine},
                  {"face_swapper_model", face_swapper_model},
                  {"processors", processors},
                  {"face_enhancer_model", face_enhancer_model},
                  {"face_enhancer_blend", face_enhancer_blend},
                  {"frame_enhancer_model", frame_enhancer_model},
                  {"frame_enhancer_blend", frame_enhancer_blend}};
  const FaceFilter& f = face_selector_filter;
  if (f.gender) j["face_selector_gender"] = *f.gender;
  if (f.race) j["face_selector_race"] = *f.race;
  if (f.age_start) j["face_selector_age_start"] = *f.age_start;
  if (f.age_end) j["face_selector_age_end"] = *f.age_end;
  return j.dump();
}

Status JobOptions::apply_to(SwapJob& job) const {
  job.engine = engine;
  job.face_swapper_model = face_swapper_model;
  job.processors = processors;
  job.face_enhancer_model = face_enhancer_model;
  job.face_enhancer.blend = static_cast<float>(face_enhancer_blend);
  job.frame_enhancer_model = frame_enhancer_model;
  job.frame_enhancer_blend = static_cast<float>(frame_enhancer_blend);
  FSWAP_ASSIGN_OR_RETURN(job.selector.mode, parse_selector_mode(face_selector_mode));
  FSWAP_ASSIGN_OR_RETURN(job.selector.order, parse_face_order(face_selector_order));
  job.selector.filter = face_selector_filter;
  job.selector.reference_distance = reference_face_distance;
  job.selector.reference_position = reference_face_position;
  job.reference_frame_number = reference_frame_number;
  job.analyser.detect.score_threshold = face_detector_score;
  job.swap.mask_blur = face_mask_blur;
  // Same mapping as the CLI (FaceFusion's): quality 0..100 → CRF 51..0.
  job.encode.crf = static_cast<int>(std::lround(51.0 - output_video_quality * 0.51));
  job.encode.preset = output_video_preset;
  job.encode.scale = output_video_scale;
  job.encode.frame_rate = frame_rate_from_fps(output_video_fps);
  job.image_scale = output_image_scale;
  job.audio_volume = output_audio_volume;
  job.audio_quality = output_audio_quality;
  job.trim_frame_start = trim_frame_start;
  job.trim_frame_end = trim_frame_end;
  return Status::ok();
}

}  // namespace fswap::server
