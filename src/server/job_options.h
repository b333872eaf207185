// JobOptions: the per-job options a client may send with POST /v1/jobs (the "options" part,
// a JSON object). Keys and ranges mirror `fswap swap`'s flags; unknown keys are refused.
//
//   FSWAP_ASSIGN_OR_RETURN(JobOptions o, parse_job_options(R"({"trim_frame_end": 30})"));
//   o.apply_to(job);   // job already carries the server's models dir, device and threads
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "pipeline/swap_job.h"

namespace fswap::server {

struct JobOptions {
  std::string face_selector_mode = "reference";  // one, many, reference
  std::string face_selector_order = "large-small";  // FaceFusion's eight orders
  FaceFilter face_selector_filter;                  // gender, race, age range (fairface.onnx when set)
  float reference_face_distance = 0.3f;          // 0..1
  int reference_face_position = 0;               // ≥ 0, in face_selector_order
  std::int64_t reference_frame_number = -1;      // ≥ 0, or -1 = the first frame with a face
  float face_detector_score = 0.5f;              // 0..1
  float face_mask_blur = 0.3f;                   // 0..1
  int output_video_quality = 80;                 // 0..100 (CRF 51..0)
  std::string output_video_preset = "veryfast";  // x264 preset
  double output_video_scale = 1.0;               // 0.25..8 (sides to the nearest even number)
  double output_video_fps = 0;                   // > 0, or 0 = the target's frame rate
  double output_image_scale = 1.0;               // 0.25..8
  int output_audio_volume = 100;                 // 0..100 (0: no audio; below 100: re-encoded)
  int output_audio_quality = -1;                 // 0..100 (AAC q:a 0.1..2.0 on re-encode), or -1 = 96 kb/s a channel
  std::int64_t trim_frame_start = 0;             // ≥ 0
  std::int64_t trim_frame_end = -1;              // > trim_frame_start, or -1 = to the end
  std::string engine = "auto";                   // auto, ort, native
  std::string face_swapper_model = "classical";  // classical or one of face_swapper_model_names()
                                                 // (FaceFusion's <name>.onnx + arcface in the models dir)
  std::vector<std::string> processors = {"face_swapper"};  // face_swapper, face_enhancer, frame_enhancer, in order
  std::string face_enhancer_model = "gfpgan_1.4";          // one of face_enhancer_model_names()
  int face_enhancer_blend = 80;                             // 0..100
  std::string frame_enhancer_model = "span_kendata_x4";    // one of frame_enhancer_model_names()
  int frame_enhancer_blend = 80;                            // 0..100

  // The options as a JSON object (every key, defaults included).
  std::string to_json() const;
  // Copies the options onto job (selector, detector score, mask, encode and the other output
  // options, trim, engine, swapper, processors, enhancer).
  Status apply_to(SwapJob& job) const;
};

// text: a JSON object; empty text means all defaults. kInvalidInput names the bad key and
// the accepted values; an unknown key is an error, so a typo never silently does nothing.
Result<JobOptions> parse_job_options(const std::string& text);

}  // namespace fswap::server
