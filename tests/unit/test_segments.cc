// Segmented video: the segment store's manifest (reuse, staleness, corruption) and run_swap's
// segmented path: a cancelled run resumed, a changed job, a corrupt segment, two CPU "devices";
// each output decoded and compared frame by frame with an uninterrupted segmented run.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "imaging/transform.h"
#include "pipeline/swap_job.h"
#include "support/drift_clip.h"
#include "support/scratch_dir.h"
#include "video/segments.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
constexpr int kFrames = 48, kFps = 16;  // 3 s
constexpr std::int64_t kSegment = 10;   // 5 segments, the last one 8 frames

std::string scratch(const std::string& name) { return test::scratch_path("segments", name); }

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  return out;
}

// Duration in seconds of the audio stream of `path` (ffprobe), -1 when there is none.
double audio_duration(const std::string& path) {
  const std::string s = capture("ffprobe -v error -select_streams a:0 -show_entries stream=duration -of csv=p=0 '" +
                                path + "'");
  return s.empty() || s.rfind("N/A", 0) == 0 ? -1.0 : std::atof(s.c_str());
}

// kFrames frames of the astronaut drifting right, 192×192 at kFps, with 3 s of AAC audio (a tone
// made by the ffmpeg CLI, copied in by VideoWriter).
std::string make_clip() {
  static const std::string path = [] {
    const std::string tone = scratch("tone.m4a");
    const std::string make_tone = "ffmpeg -v error -y -f lavfi -i sine=frequency=440:duration=3 -c:a aac '" + tone + "'";
    EXPECT_EQ(std::system(make_tone.c_str()), 0);
    const std::string p = scratch("drift_audio.mp4");
    test::write_drift_clip(p, 192, kFrames, kFps, 2.0, AudioSource{tone, 0, -1});
    return p;
  }();
  return path;
}

SwapJob segmented_job(const std::string& output, const std::string& segment_dir) {
  SwapJob job;
  job.sources = {kMedia + "messi5.jpg"};
  job.target = make_clip();
  job.output = output;
  job.analyser.models_dir = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";
  job.selector.mode = SelectorMode::kReference;  // the default: the reference is frame 0's face
  job.segment_dir = segment_dir;
  job.segment_frames = kSegment;
  // Lossless (x264 at CRF 0): the decoded output is exactly what face work produced. With loss,
  // x264 in this process does not always encode the same frames to the same bits (measured:
  // 52 dB between two runs on identical frames), which would hide what these tests compare.
  job.encode.crf = 0;
  return job;
}

struct Decoded {
  std::vector<VideoFrame> frames;
  double time_base = 0;
  double duration_s = 0;
};

Decoded decode_all(const std::string& path) {
  Decoded d;
  auto reader = VideoReader::open(path);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (!reader) return d;
  d.time_base = (*reader)->info().time_base.value();
  d.duration_s = (*reader)->info().duration_s;
  VideoFrame f;
  while ((*reader)->read(f).value()) d.frames.push_back(f);
  return d;
}

// Same frame count, timestamps kFps apart from 0, and identical pixels.
void expect_same_video(const std::string& expected, const std::string& actual) {
  const Decoded a = decode_all(expected), b = decode_all(actual);
  ASSERT_EQ(a.frames.size(), static_cast<std::size_t>(kFrames));
  ASSERT_EQ(b.frames.size(), a.frames.size());
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    EXPECT_NEAR(b.frames[i].pts * b.time_base, static_cast<double>(i) / kFps, 1e-4) << "frame " << i;
    EXPECT_TRUE(a.frames[i].image.pixels == b.frames[i].image.pixels) << "frame " << i << " differs";
  }
}

void expect_no_output(const std::string& out) {
  EXPECT_FALSE(fs::exists(out)) << out;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << e.path();
}

// The uninterrupted segmented run every other run is compared with (made once).
const std::string& reference_output() {
  static const std::string out = [] {
    const std::string o = scratch("reference.mp4");
    const std::string dir = scratch("reference_segments");
    auto summary = run_swap(segmented_job(o, dir));
    EXPECT_TRUE(summary.is_ok()) << summary.status().to_string();
    if (summary) {
      EXPECT_EQ(summary->frames, kFrames);
      EXPECT_EQ(summary->frames_resumed, 0);
      EXPECT_EQ(summary->segments, 5);
      EXPECT_GT(summary->faces_swapped, kFrames / 2);
    }
    EXPECT_FALSE(fs::exists(dir)) << "finished segments are removed";
    return o;
  }();
  return out;
}

// Runs `job` until `frames` frames are done, then cancels it; expects the cancellation.
void run_and_cancel_after(SwapJob job, std::int64_t frames) {
  std::atomic<bool> cancel{false};
  job.cancel = &cancel;
  auto summary = run_swap(job, [&](const SwapProgress& p) {
    if (p.frames_done >= frames) cancel = true;
  });
  ASSERT_FALSE(summary.is_ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kCancelled);
  expect_no_output(job.output);
}

TEST(SegmentedSwap, OutputKeepsEveryFrameTimestampAndTheAudio) {
  const std::string& out = reference_output();
  const Decoded d = decode_all(out);
  ASSERT_EQ(d.frames.size(), static_cast<std::size_t>(kFrames));
  for (std::size_t i = 0; i < d.frames.size(); ++i) EXPECT_NEAR(d.frames[i].pts * d.time_base, double(i) / kFps, 1e-4);
  const double source = audio_duration(make_clip()), joined = audio_duration(out);
  std::printf("audio: source %.4f s, joined output %.4f s\n", source, joined);
  ASSERT_GT(source, 0);
  EXPECT_NEAR(joined, source, 1024.0 / 44100);  // within one AAC frame
}

TEST(SegmentedSwap, CancelledRunResumesFromTheLastFinishedSegment) {
  const std::string dir = scratch("resume_segments");
  const std::string out = scratch("resumed.mp4");
  run_and_cancel_after(segmented_job(out, dir), 25);
  ASSERT_TRUE(fs::exists(fs::path(dir) / "manifest.json"));

  std::int64_t resumed_seen = -1;
  auto summary = run_swap(segmented_job(out, dir), [&](const SwapProgress& p) { resumed_seen = p.frames_resumed; });
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  std::printf("resumed %lld of %d frames\n", static_cast<long long>(summary->frames_resumed), kFrames);
  EXPECT_GE(summary->frames_resumed, 20);  // at least the two segments finished before frame 25
  EXPECT_EQ(summary->frames_resumed % kSegment, 0);
  EXPECT_LT(summary->frames_resumed, kFrames);
  EXPECT_EQ(resumed_seen, summary->frames_resumed);
  EXPECT_EQ(summary->frames, kFrames);
  expect_same_video(reference_output(), out);
  EXPECT_NEAR(audio_duration(out), audio_duration(make_clip()), 1024.0 / 44100);
}

TEST(SegmentedSwap, FaultInFaceWorkThenResume) {
  const std::string dir = scratch("fault_segments");
  const std::string out = scratch("fault.mp4");
  SwapJob failing = segmented_job(out, dir);
  failing.fault_injection = [](const char* stage, std::int64_t frame) {
    return std::string(stage) == "face" && frame == 33 ? internal_error("injected") : Status::ok();
  };
  auto failed = run_swap(failing);
  ASSERT_FALSE(failed.is_ok());
  EXPECT_EQ(failed.status().message(), "injected");
  expect_no_output(out);

  auto summary = run_swap(segmented_job(out, dir));
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames_resumed, 30);  // segments 0-2 finished; segment 3 failed at frame 33
  expect_same_video(reference_output(), out);
}

TEST(SegmentedSwap, ManifestOfOtherOptionsIsNotReused) {
  const std::string dir = scratch("stale_segments");
  const std::string out = scratch("stale.mp4");
  run_and_cancel_after(segmented_job(out, dir), 25);
  SwapJob changed = segmented_job(out, dir);
  changed.swap.mask_blur = 0.5f;
  auto summary = run_swap(changed);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames_resumed, 0);
  EXPECT_EQ(summary->frames, kFrames);
}

TEST(SegmentedSwap, CorruptOrTruncatedSegmentIsRedone) {
  const std::string dir = scratch("corrupt_segments");
  const std::string out = scratch("corrupt.mp4");
  run_and_cancel_after(segmented_job(out, dir), 25);
  const fs::path s0 = fs::path(dir) / "segment-00000.mp4", s1 = fs::path(dir) / "segment-00001.mp4";
  ASSERT_TRUE(fs::exists(s0) && fs::exists(s1));
  fs::resize_file(s0, fs::file_size(s0) / 2);  // truncated
  {
    std::fstream f(s1, std::ios::in | std::ios::out | std::ios::binary);  // one byte changed, same size
    f.seekp(static_cast<std::streamoff>(fs::file_size(s1) / 2));
    f.put('\x5a');
  }
  auto summary = run_swap(segmented_job(out, dir));
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_LT(summary->frames_resumed, kFrames - 20);
  expect_same_video(reference_output(), out);
}

TEST(SegmentedSwap, TwoCpuDevicesEqualTheOneDeviceRun) {
  SwapJob job = segmented_job(scratch("two_cpus.mp4"), scratch("two_cpu_segments"));
  job.devices = {Device{DeviceKind::kCpu, 0}, Device{DeviceKind::kCpu, 0}};
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, kFrames);
  EXPECT_EQ(summary->segments, 5);
  expect_same_video(reference_output(), job.output);
  EXPECT_NEAR(audio_duration(job.output), audio_duration(make_clip()), 1024.0 / 44100);
}

TEST(SegmentedSwap, TwoDevicesWithoutSegmentDirUseOneTemporarySegmentEach) {
  SwapJob job = segmented_job(scratch("two_parts.mp4"), "");
  job.segment_frames = 0;
  job.swap_faces = false;
  job.devices = {Device{DeviceKind::kCpu, 0}, Device{DeviceKind::kCpu, 0}};
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->segments, 2);
  const Decoded d = decode_all(job.output);
  ASSERT_EQ(d.frames.size(), static_cast<std::size_t>(kFrames));
  for (std::size_t i = 0; i < d.frames.size(); ++i) EXPECT_NEAR(d.frames[i].pts * d.time_base, double(i) / kFps, 1e-4);
  for (const auto& e : fs::directory_iterator(fs::path(job.output).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".segments-"), std::string::npos) << e.path();
}

TEST(SegmentedSwap, TrimmedRangeIsSegmentedFromItsFirstFrame) {
  SwapJob job = segmented_job(scratch("trimmed.mp4"), scratch("trim_segments"));
  job.swap_faces = false;
  job.trim_frame_start = 7;
  job.trim_frame_end = 30;
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, 23);
  EXPECT_EQ(summary->segments, 3);
  const Decoded d = decode_all(job.output);
  ASSERT_EQ(d.frames.size(), 23u);
  EXPECT_NEAR(d.frames.front().pts * d.time_base, 0.0, 1e-4);
  EXPECT_NEAR(audio_duration(job.output), 23.0 / kFps, 1024.0 / 44100 + 1e-3);
}

TEST(SegmentedSwap, SegmentDirWithoutSegmentLengthIsRejected) {
  SwapJob job = segmented_job(scratch("x.mp4"), scratch("x_segments"));
  job.segment_frames = 0;
  EXPECT_EQ(validate_job(job).code(), StatusCode::kInvalidInput);
}

// ---- --output-video-fps over segments ----

// The unsegmented run of `job` (its segment options cleared), made once per rate and trim start.
std::string unsegmented_output(SwapJob job) {
  static std::map<std::string, std::string> made;
  const std::string key = fs::path(job.target).stem().string() + "-" + std::to_string(job.encode.frame_rate.num) + "-" +
                          std::to_string(job.trim_frame_start);
  if (made.count(key)) return made[key];
  job.output = scratch("whole_fps" + key + ".mp4");
  job.segment_dir.clear();
  job.segment_frames = 0;
  job.devices.clear();
  auto summary = run_swap(job);
  EXPECT_TRUE(summary.is_ok()) << summary.status().to_string();
  return made[key] = job.output;
}

// The same frames (count, pixels) at the same times, over the same video and audio durations.
void expect_same_output(const std::string& expected, const std::string& actual) {
  const Decoded a = decode_all(expected), b = decode_all(actual);
  ASSERT_FALSE(a.frames.empty());
  ASSERT_EQ(b.frames.size(), a.frames.size());
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    EXPECT_NEAR(b.frames[i].pts * b.time_base, a.frames[i].pts * a.time_base, 1e-6) << "frame " << i;
    EXPECT_TRUE(a.frames[i].image.pixels == b.frames[i].image.pixels) << "frame " << i << " differs";
  }
  EXPECT_NEAR(b.duration_s, a.duration_s, 1e-6);
  EXPECT_NEAR(audio_duration(actual), audio_duration(expected), 1e-3);
}

// A job whose face work does not depend on the frames before (no landmark smoothing), so a
// segmented output can equal the unsegmented one pixel for pixel.
SwapJob fps_job(const std::string& name, Rational rate) {
  SwapJob job = segmented_job(scratch(name + ".mp4"), scratch(name + "_segments"));
  job.smooth_landmarks = false;
  job.encode.frame_rate = rate;
  return job;
}

// 48 frames at 16 fps in segments of 10, at rates below and above 16: the segmented output has the
// unsegmented one's frames, timestamps and durations, on one device and on two (parts of 2 and 3
// segments), from frame 0 and from a trim start. At 1 fps, segments 1 (frames 10-19: 0.625 to
// 1.25 s, both rounding to tick 1) and 4 (frames 40-47: 2.5 to 3 s, ticks 3 to 3) show no frame.
TEST(SegmentedOutputFps, EqualsTheUnsegmentedRunAtLowerAndHigherRates) {
  struct Case {
    Rational rate;
    std::int64_t trim_start;
    bool two_devices;
    std::size_t frames_out;
  };
  for (const Case& c : {Case{{1, 1}, 0, false, 3}, Case{{10, 1}, 0, false, 30}, Case{{25, 1}, 0, false, 75},
                        Case{{29970, 1000}, 0, true, 90}, Case{{1, 1}, 0, true, 3}, Case{{10, 1}, 7, false, 26}}) {
    const std::string name = "fps" + std::to_string(c.rate.num) + "_" + std::to_string(c.trim_start) +
                             (c.two_devices ? "_two" : "_one");
    SCOPED_TRACE(name);
    SwapJob job = fps_job(name, c.rate);
    job.trim_frame_start = c.trim_start;
    if (c.two_devices) job.devices = {Device{DeviceKind::kCpu, 0}, Device{DeviceKind::kCpu, 0}};
    auto summary = run_swap(job);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(summary->frames, kFrames - c.trim_start);  // target frames taken
    EXPECT_EQ(summary->segments, (kFrames - c.trim_start + kSegment - 1) / kSegment);
    const std::string whole = unsegmented_output(job);
    EXPECT_EQ(decode_all(whole).frames.size(), c.frames_out);
    expect_same_output(whole, job.output);
    EXPECT_FALSE(fs::exists(job.segment_dir)) << "finished segments are removed";
  }
}

// 40 frames of the drifting astronaut (192×192) on a 1 ms time base, 62 ms apart, except that
// frames 10, 20 and 30, the first ones of segments, come 40 ms late: a variable frame rate where a
// segment's last frame lasts longer than the nominal 1/16 s.
std::string make_vfr_clip() {
  static const std::string path = [] {
    const std::string p = scratch("drift_vfr.mp4");
    const Image photo = read_image(kMedia + "astronaut.png").value();
    VideoInfo info;
    info.width = info.height = 192;
    info.time_base = {1, 1000};
    info.frame_rate = {kFps, 1};
    auto writer = VideoWriter::open(p, info, {}, {}).value();
    for (int i = 0; i < 40; ++i) {
      VideoFrame f;
      f.image = warp_affine(photo, Affine{192.0 / 512, 0, 2.0 * i, 0, 192.0 / 512, 0}, 192, 192);
      f.pts = 62 * i + 40 * (i / 10);
      f.index = i;
      EXPECT_TRUE(writer->write(f).is_ok());
    }
    EXPECT_TRUE(writer->finish().is_ok());
    return p;
  }();
  return path;
}

// On that clip at 10 fps each segment ends where the next one's first frame is, not one nominal
// frame after its last (frame 9 at 558 ms would end on tick 6; it lasts to 660 ms, tick 7).
TEST(SegmentedOutputFps, VariableFrameRateSegmentsEndAtTheNextSegmentsFirstFrame) {
  SwapJob job = fps_job("fps_vfr", {10, 1});
  job.target = make_vfr_clip();
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->segments, 4);
  const std::string whole = unsegmented_output(job);
  EXPECT_EQ(decode_all(whole).frames.size(), 26u);  // frame 39 at 2538 ms + a nominal frame ≈ 2.6 s
  expect_same_output(whole, job.output);
}

// At 1 fps a segment may show no frame: it is recorded with 0 output frames (its offset the
// tick where the next one starts), kept on resume, and adds nothing to the join.
TEST(SegmentedOutputFps, ASegmentThatShowsNoFrameIsRecordedEmptyAndResumed) {
  SwapJob job = fps_job("fps1_empty", {1, 1});
  SwapJob failing = job;
  failing.fault_injection = [](const char* stage, std::int64_t frame) {
    return std::string(stage) == "encode" && frame == 45 ? internal_error("injected") : Status::ok();
  };
  ASSERT_FALSE(run_swap(failing).is_ok());
  std::ifstream in(fs::path(job.segment_dir) / "manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  std::vector<std::int64_t> shown, offsets;
  for (const auto& segment : manifest["segments"]) {
    shown.push_back(segment["output_frames"]);
    offsets.push_back(segment["pts_offset"]);
  }
  EXPECT_EQ(shown, (std::vector<std::int64_t>{1, 0, 1, 1}));  // segments 0-3, finished before frame 45
  EXPECT_EQ(offsets, (std::vector<std::int64_t>{0, 1, 1, 2}));  // in ticks of 1 s
  EXPECT_EQ(manifest["time_base"], (std::vector<int>{1, 1}));

  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames_resumed, 40);
  expect_same_output(unsegmented_output(job), job.output);
}

// A store made at another output rate, or at the target's, is not reused: its segments hold
// other frames. One made at the same rate is, and the resumed output equals the unsegmented run.
TEST(SegmentedOutputFps, ResumeReusesOnlySegmentsOfTheSameRate) {
  const std::string dir = scratch("fps_resume_segments");
  SwapJob at_source_rate = segmented_job(scratch("fps_resume.mp4"), dir);
  run_and_cancel_after(at_source_rate, 25);
  SwapJob at_10 = fps_job("fps_resumed", {10, 1});
  at_10.segment_dir = dir;
  auto summary = run_swap(at_10);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames_resumed, 0);
  expect_same_output(unsegmented_output(at_10), at_10.output);

  at_10.output = scratch("fps_resumed.mp4");  // removes the finished output
  run_and_cancel_after(at_10, 25);
  SwapJob at_25 = at_10;
  at_25.encode.frame_rate = {25, 1};
  summary = run_swap(at_25);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames_resumed, 0);
  expect_same_output(unsegmented_output(at_25), at_25.output);

  at_25.output = scratch("fps_resumed.mp4");
  run_and_cancel_after(at_25, 25);
  summary = run_swap(at_25);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  std::printf("25 fps: resumed %lld of %d frames\n", static_cast<long long>(summary->frames_resumed), kFrames);
  EXPECT_GE(summary->frames_resumed, 20);
  EXPECT_LT(summary->frames_resumed, kFrames);
  expect_same_output(unsegmented_output(at_25), at_25.output);
}

// VideoReader::seek on a clip with a key frame every 8 frames and B-frames: the frames after a
// seek are those a read from the start gives (pixels, pts, index).
TEST(VideoReaderSeek, LandsOnTheFrameASequentialReadGives) {
  const std::string clip = scratch("keyframes.mp4");
  ASSERT_EQ(std::system(("ffmpeg -v error -y -f lavfi -i testsrc2=s=96x64:r=25:d=2 -c:v libx264 -g 8 -bf 2 "
                         "-pix_fmt yuv420p '" + clip + "'").c_str()), 0);
  const Decoded all = decode_all(clip);
  ASSERT_EQ(all.frames.size(), 50u);
  for (std::int64_t start : {1, 7, 8, 9, 23, 49}) {
    auto reader = VideoReader::open(clip).value();
    ASSERT_TRUE(reader->seek(start).is_ok()) << start;
    VideoFrame f;
    for (std::int64_t i = start; i < std::min<std::int64_t>(start + 3, 50); ++i) {
      ASSERT_TRUE(reader->read(f).value()) << i;
      EXPECT_EQ(f.index, i);
      EXPECT_EQ(f.pts, all.frames[static_cast<std::size_t>(i)].pts) << i;
      EXPECT_TRUE(f.image.pixels == all.frames[static_cast<std::size_t>(i)].image.pixels) << "frame " << i;
    }
  }
  auto reader = VideoReader::open(clip).value();
  EXPECT_EQ(reader->seek(50).code(), StatusCode::kInvalidInput);  // past the last frame
  VideoFrame f;
  auto fresh = VideoReader::open(clip).value();
  ASSERT_TRUE(fresh->read(f).value());
  EXPECT_FALSE(fresh->seek(3).is_ok());  // only before reading
}

// `frames` frames of width × 64 at rate/1 fps with pts from `first_pts`, as a segment file.
std::string write_segment(const std::string& name, int width, std::int64_t first_pts, int frames, int rate = kFps) {
  const std::string path = scratch(name);
  VideoInfo info;
  info.width = width;
  info.height = 64;
  info.time_base = {1, rate};
  info.frame_rate = {rate, 1};
  auto writer = VideoWriter::open(path, info, {}, {}).value();
  for (int i = 0; i < frames; ++i) {
    VideoFrame f;
    f.image = Image(width, 64, 3);
    std::fill(f.image.pixels.begin(), f.image.pixels.end(), static_cast<std::uint8_t>(40 * i));
    f.pts = first_pts + i;
    f.index = first_pts + i;
    EXPECT_TRUE(writer->write(f).is_ok());
  }
  EXPECT_TRUE(writer->finish().is_ok());
  return path;
}

// Segments at 30 fps whose offsets are not whole milliseconds (25/30 s): every output
// container gets the frames at i/30 s (Matroska to its 1 ms resolution).
TEST(JoinSegments, CopiesPacketsAtTheirOffsetsIntoEachContainer) {
  const std::string a = write_segment("join30_a.mp4", 96, 0, 25, 30), b = write_segment("join30_b.mp4", 96, 0, 8, 30);
  for (const char* ext : {"mp4", "mov", "mkv"}) {
    const std::string out = scratch(std::string("joined30.") + ext);
    ASSERT_TRUE(join_segments({{a, 0, 25}, {b, 25, 8}}, {1, 30}, out, {}).is_ok()) << ext;
    const Decoded d = decode_all(out);
    ASSERT_EQ(d.frames.size(), 33u) << ext;
    for (std::size_t i = 0; i < d.frames.size(); ++i)
      EXPECT_NEAR(d.frames[i].pts * d.time_base, double(i) / 30, 0.0006) << ext << " frame " << i;
  }
}

TEST(JoinSegments, RefusesWhatCannotBeJoined) {
  const std::string a = write_segment("join_a.mp4", 96, 0, 4), b = write_segment("join_b.mp4", 96, 0, 3);
  const std::string refused = scratch("refused.mp4");
  const std::string wider = write_segment("join_wide.mp4", 128, 0, 3);
  EXPECT_EQ(join_segments({{a, 0, 4}, {wider, 4, 3}}, {1, kFps}, refused, {}).code(), StatusCode::kInvalidInput);
  EXPECT_EQ(join_segments({{a, 0, 4}, {b, 2, 3}}, {1, kFps}, refused, {}).code(),
            StatusCode::kInvalidInput);  // time goes back
  EXPECT_EQ(join_segments({{a, 0, 4}, {b, 4, 4}}, {1, kFps}, refused, {}).code(),
            StatusCode::kInternal);  // not what the manifest says
  EXPECT_EQ(join_segments({{a, 0, 0}, {b, 4, 0}}, {1, kFps}, refused, {}).code(),
            StatusCode::kInvalidInput);  // no segment with frames
  expect_no_output(refused);
}

// The store alone, on plain files: what a reopened directory keeps.
class SegmentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {  // a new directory each time (scratch() does not empty one)
    static int runs = 0;
    dir_ = scratch("store_" + std::to_string(runs++));
  }
  SegmentLayout layout(const std::string& fingerprint = "job A") const { return {fingerprint, 5, 4, {1, 16}}; }
  static void write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  std::string dir_;
};

TEST_F(SegmentStoreTest, KeepsMatchingSegmentsAndDropsTheRest) {
  {
    auto store = SegmentStore::open(dir_, layout()).value();
    EXPECT_EQ(store->path_for(3), dir_ + "/segment-00003.mp4");
    for (int k : {0, 1, 2}) {
      write(store->path_for(k), "segment " + std::to_string(k));
      ASSERT_TRUE(store->add(k, 4, 4, 4 * k).is_ok());
    }
    EXPECT_FALSE(store->add(3, 2, 2, 12).is_ok());  // short, but the end is not known yet
    EXPECT_FALSE(store->complete_files().is_ok());
    // Frames 5..14: segments of 4, 4 and 2; the 4-frame record of segment 2 no longer fits.
    ASSERT_TRUE(store->set_end(15).is_ok());
    EXPECT_FALSE(store->finished(2));
    ASSERT_TRUE(store->add(2, 2, 1, 8).is_ok());  // --output-video-fps: 1 frame shown
    auto files = store->complete_files();
    ASSERT_TRUE(files.is_ok()) << files.status().to_string();
    ASSERT_EQ(files->size(), 3u);
    EXPECT_EQ((*files)[2].path, dir_ + "/segment-00002.mp4");
    EXPECT_EQ((*files)[2].pts_offset, 8);
    EXPECT_EQ((*files)[2].frames, 1);
  }
  write(dir_ + "/segment-00007.mp4", "left by a killed run");
  write(dir_ + "/.segment-00003.part-123.mp4", "a writer's temporary");
  write(dir_ + "/notes.txt", "not ours");
  write(dir_ + "/segment-00001.mp4", "segment X");  // same size, other bytes
  auto store = SegmentStore::open(dir_, layout()).value();
  EXPECT_TRUE(store->finished(0));
  EXPECT_FALSE(store->finished(1));
  EXPECT_TRUE(store->finished(2));
  EXPECT_EQ(store->finished_frames(), 6);
  EXPECT_EQ(store->end_frame(), 15);
  EXPECT_FALSE(fs::exists(dir_ + "/segment-00001.mp4"));
  EXPECT_FALSE(fs::exists(dir_ + "/segment-00007.mp4"));
  EXPECT_FALSE(fs::exists(dir_ + "/.segment-00003.part-123.mp4"));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));

  ASSERT_TRUE(store->remove_all().is_ok());
  EXPECT_FALSE(fs::exists(dir_ + "/manifest.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));  // the directory stays: it is not empty
}

TEST_F(SegmentStoreTest, OtherFingerprintOrLayoutStartsAfresh) {
  {
    auto store = SegmentStore::open(dir_, layout()).value();
    write(store->path_for(0), "segment 0");
    ASSERT_TRUE(store->add(0, 4, 4, 0).is_ok());
  }
  EXPECT_TRUE(SegmentStore::open(dir_, layout())->get()->finished(0));
  auto other = SegmentStore::open(dir_, layout("job B")).value();
  EXPECT_FALSE(other->finished(0));
  EXPECT_FALSE(fs::exists(dir_ + "/segment-00000.mp4"));

  write(other->path_for(0), "segment 0");
  ASSERT_TRUE(other->add(0, 4, 4, 0).is_ok());
  SegmentLayout longer = layout("job B");
  longer.segment_frames = 8;
  EXPECT_FALSE(SegmentStore::open(dir_, longer)->get()->finished(0));
}

TEST_F(SegmentStoreTest, UnreadableManifestStartsAfresh) {
  fs::create_directories(dir_);
  write(dir_ + "/manifest.json", "{\"version\": 1, \"segments\": [{\"index\": \"zero\"}]");
  auto store = SegmentStore::open(dir_, layout());
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  EXPECT_EQ((*store)->finished_frames(), 0);
}

}  // namespace
}  // namespace fswap
