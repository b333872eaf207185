// FaceFusion's output options: --output-video-scale and --output-video-fps (VideoWriter through
// EncodeOptions), --output-audio-volume and --output-audio-quality (AudioSource), and
// --output-image-scale (SwapJob). Clips are written frame by frame here; the audio source is made
// with the ffmpeg CLI (a 440 Hz sine) and read back with it as raw samples.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "imaging/transform.h"
#include "pipeline/swap_job.h"
#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {

namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

std::string scratch(const std::string& name) { return test::scratch_path("output-options", name); }

bool have_ffmpeg_cli() { return std::system("ffmpeg -version >/dev/null 2>&1") == 0; }

// Frame i of a test clip: a horizontal ramp (so a resize is visible) whose brightness encodes i.
Image numbered_frame(int w, int h, int i) {
  Image img(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.at(x, y, 0) = static_cast<uint8_t>(x * 255 / (w - 1));
      img.at(x, y, 1) = static_cast<uint8_t>(20 + 5 * i);
      img.at(x, y, 2) = static_cast<uint8_t>(y * 255 / (h - 1));
    }
  return img;
}

// Writes `frames` numbered frames at `fps` (time base 1/fps) to `path`.
Status write_clip(const std::string& path, int w, int h, int frames, int fps, const EncodeOptions& options,
                  const AudioSource& audio = {}) {
  VideoInfo info;
  info.width = w;
  info.height = h;
  info.time_base = {1, fps};
  info.frame_rate = {fps, 1};
  FSWAP_ASSIGN_OR_RETURN(auto writer, VideoWriter::open(path, info, options, audio));
  for (int i = 0; i < frames; ++i) {
    VideoFrame f;
    f.image = numbered_frame(w, h, i);
    f.pts = i;
    f.index = i;
    FSWAP_RETURN_IF_ERROR(writer->write(f));
  }
  return writer->finish();
}

struct ReadBack {
  VideoInfo info;
  std::vector<VideoFrame> frames;
};

ReadBack read_back(const std::string& path) {
  ReadBack r;
  auto reader = VideoReader::open(path);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (!reader) return r;
  r.info = (*reader)->info();
  VideoFrame f;
  while (true) {
    auto got = (*reader)->read(f);
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (!got || !*got) break;
    r.frames.push_back(f);
  }
  return r;
}

// Which numbered frame an image shows (its mean green, 20 + 5 i).
int frame_number(const Image& img) {
  double sum = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) sum += img.at(x, y, 1);
  return static_cast<int>(std::lround((sum / (img.width * img.height) - 20) / 5));
}

double psnr(const Image& a, const Image& b) {
  double se = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = double(a.pixels[i]) - b.pixels[i];
    se += d * d;
  }
  const double mse = se / double(a.pixels.size());
  return mse <= 1e-12 ? 99 : 10 * std::log10(255.0 * 255.0 / mse);
}

// A 2 s AAC clip of a 440 Hz sine at amplitude 0.5 (made once per process).
const std::string& sine_audio() {
  static const std::string path = [] {
    const std::string p = scratch("sine.m4a");
    std::system(("ffmpeg -v error -y -f lavfi -i 'sine=f=440:r=48000:d=2,volume=0.5' -c:a aac " + p).c_str());
    return p;
  }();
  return path;
}

// The RMS of the first audio stream of `path`, decoded to mono float samples by the ffmpeg CLI;
// -1 when it has none.
double audio_rms(const std::string& path) {
  FILE* p = ::popen(("ffmpeg -v error -i '" + path + "' -map 0:a:0 -ac 1 -f f32le - 2>/dev/null").c_str(), "r");
  if (p == nullptr) return -1;
  std::vector<float> samples;
  float buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, sizeof(float), 4096, p)) > 0) samples.insert(samples.end(), buf, buf + n);
  ::pclose(p);
  if (samples.empty()) return -1;
  double sum = 0;
  for (float s : samples) sum += double(s) * s;
  return std::sqrt(sum / double(samples.size()));
}

// ffprobe's bit rate of the first audio stream of `path` (bits/s).
double audio_bit_rate(const std::string& path) {
  FILE* p = ::popen(("ffprobe -v error -select_streams a:0 -show_entries stream=bit_rate -of csv=p=0 '" + path +
                     "' 2>/dev/null").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[64] = {};
  const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
  ::pclose(p);
  return got ? std::atof(buf) : -1;
}

TEST(OutputVideoScale, SidesRoundToTheNearestEvenNumber) {
  EXPECT_EQ(scaled_video_size(256, 0.5), 128);
  EXPECT_EQ(scaled_video_size(256, 1.5), 384);
  EXPECT_EQ(scaled_video_size(255, 1.0), 256);  // as the writer pads odd sizes at scale 1
  EXPECT_EQ(scaled_video_size(254, 0.5), 128);  // 127 is halfway: up
  EXPECT_EQ(scaled_video_size(100, 0.25), 26);  // 25: up
  EXPECT_EQ(scaled_video_size(101, 0.25), 26);  // 25.25
  EXPECT_EQ(scaled_video_size(1920, 0.3333), 640);  // 639.9
  EXPECT_EQ(scaled_video_size(3, 0.25), 2);     // at least 2
  EXPECT_EQ(scaled_video_size(1080, 8.0), 8640);
}

TEST(OutputVideoScale, WriterResizesToTheScaledEvenSize) {
  struct Case {
    int w, h;
    double scale;
    int out_w, out_h;
  };
  for (const Case& c : {Case{256, 256, 0.5, 128, 128}, Case{256, 256, 1.5, 384, 384}, Case{254, 198, 0.5, 128, 100},
                        Case{256, 256, 0.25, 64, 64}, Case{255, 171, 0.5, 128, 86}}) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h) + " x " + std::to_string(c.scale));
    const std::string out = scratch("scaled.mp4");
    EncodeOptions options;
    options.scale = c.scale;
    ASSERT_TRUE(write_clip(out, c.w, c.h, 6, 20, options).is_ok());
    const ReadBack r = read_back(out);
    EXPECT_EQ(r.info.width, c.out_w);
    EXPECT_EQ(r.info.height, c.out_h);
    ASSERT_EQ(r.frames.size(), 6u);
    // The picture is the frame resized, not cropped or padded.
    const Image expected = resize(numbered_frame(c.w, c.h, 3), c.out_w, c.out_h, Interp::kArea);
    EXPECT_GT(psnr(r.frames[3].image, expected), 30.0);
    EXPECT_EQ(frame_number(r.frames[3].image), 3);
  }
}

TEST(OutputVideoScale, ScaleOneKeepsTheFramesSize) {
  const std::string out = scratch("unscaled.mp4");
  ASSERT_TRUE(write_clip(out, 256, 256, 4, 20, {}).is_ok());
  const ReadBack r = read_back(out);
  EXPECT_EQ(r.info.width, 256);
  EXPECT_EQ(r.info.height, 256);
  EXPECT_GT(psnr(r.frames[2].image, numbered_frame(256, 256, 2)), 35.0);
}

// The frame a tick shows under FFmpeg's fps filter: the last input frame whose time, in ticks,
// rounds (halves away from zero) to at most the tick.
int expected_frame(int tick, int in_fps, double out_fps, int frames) {
  int shown = 0;
  for (int i = 0; i < frames; ++i)
    if (std::llround(i * out_fps / in_fps) <= tick) shown = i;
  return shown;
}

TEST(OutputVideoFps, FramesAreDroppedOrRepeatedByTimestamp) {
  struct Case {
    Rational rate;
    int frames_out;
  };
  // 40 frames at 20 fps (2 s): 10 fps halves them, 30 repeats every other, 7.5 keeps 15.
  for (const Case& c : {Case{{10, 1}, 20}, Case{{30, 1}, 60}, Case{{15, 2}, 15}}) {
    SCOPED_TRACE(std::to_string(c.rate.value()) + " fps");
    const std::string out = scratch("fps.mp4");
    EncodeOptions options;
    options.frame_rate = c.rate;
    options.crf = 0;  // lossless: x264 may skip the small change between frames in a B-frame
    ASSERT_TRUE(write_clip(out, 64, 48, 40, 20, options).is_ok());
    const ReadBack r = read_back(out);
    ASSERT_EQ(static_cast<int>(r.frames.size()), c.frames_out);
    EXPECT_NEAR(r.info.frame_rate.value(), c.rate.value(), 1e-6);
    EXPECT_NEAR(r.info.duration_s, 2.0, 1.0 / c.rate.value());
    for (int k = 0; k < c.frames_out; ++k) {
      EXPECT_NEAR(r.frames[k].pts * r.info.time_base.value(), k / c.rate.value(), 1e-3) << "tick " << k;
      EXPECT_EQ(frame_number(r.frames[k].image), expected_frame(k, 20, c.rate.value(), 40)) << "tick " << k;
    }
  }
}

// OutputTicks (what the pipeline asks to skip the face work of dropped frames) names exactly the
// frames the writer shows.
TEST(OutputVideoFps, TicksNameTheFramesTheWriterShows) {
  for (const Rational rate : {Rational{10, 1}, Rational{30, 1}, Rational{15, 2}, Rational{13, 1}, Rational{1, 1}}) {
    SCOPED_TRACE(std::to_string(rate.value()) + " fps");
    const std::string out = scratch("ticks.mp4");
    EncodeOptions options;
    options.frame_rate = rate;
    options.crf = 0;
    ASSERT_TRUE(write_clip(out, 64, 48, 40, 20, options).is_ok());
    std::set<int> written;
    for (const VideoFrame& f : read_back(out).frames) written.insert(frame_number(f.image));
    VideoInfo info;
    info.time_base = {1, 20};
    info.frame_rate = {20, 1};
    const OutputTicks ticks(info, rate);
    std::set<int> shown;
    for (int i = 0; i < 40; ++i)
      if (i + 1 < 40 ? ticks.shown(i, i + 1) : ticks.last_shown(i)) shown.insert(i);
    EXPECT_EQ(shown, written);
  }
}

// A video written in pieces of 7 frames, each with its frames' pts from 0, the whole video's first
// frame as tick origin (EncodeOptions::tick_origin = −the piece's start) and the next piece's start
// as its end (VideoWriter::finish_at): the pieces hold, tick by tick, the frames one writer of the
// whole video shows, each piece from its first frame's tick on; at 1 fps the first piece (0-0.35 s,
// ticks 0 to 0) holds none.
TEST(OutputVideoFps, PiecesCountTicksFromTheWholeVideosFirstFrame) {
  constexpr int kFrames = 40, kFps = 20, kPiece = 7;
  VideoInfo info;
  info.width = 64;
  info.height = 48;
  info.time_base = {1, kFps};
  info.frame_rate = {kFps, 1};
  for (const Rational rate : {Rational{13, 1}, Rational{30, 1}, Rational{1, 1}}) {
    SCOPED_TRACE(std::to_string(rate.value()) + " fps");
    EncodeOptions options;
    options.frame_rate = rate;
    options.crf = 0;
    const std::string whole = scratch("whole.mp4");
    ASSERT_TRUE(write_clip(whole, info.width, info.height, kFrames, kFps, options).is_ok());
    std::vector<int> expected;
    for (const VideoFrame& f : read_back(whole).frames) expected.push_back(frame_number(f.image));

    const OutputTicks ticks(info, rate);
    std::vector<int> shown;
    for (int start = 0; start < kFrames; start += kPiece) {
      const int end = std::min(start + kPiece, kFrames);
      const std::string piece = scratch("piece.mp4");
      EncodeOptions piece_options = options;
      piece_options.tick_origin = -start;
      auto writer = VideoWriter::open(piece, info, piece_options, {}).value();
      for (int i = start; i < end; ++i) {
        VideoFrame f;
        f.image = numbered_frame(info.width, info.height, i);
        f.pts = i - start;
        f.index = i;
        ASSERT_TRUE(writer->write(f).is_ok());
      }
      ASSERT_TRUE((end < kFrames ? writer->finish_at(end - start) : writer->finish()).is_ok());
      EXPECT_EQ(static_cast<std::int64_t>(shown.size()), ticks.tick(start)) << "piece at " << start;
      const std::int64_t end_tick = end < kFrames ? ticks.tick(end) : ticks.end_tick(kFrames - 1);
      if (end_tick == ticks.tick(start)) {  // a piece that shows no frame: a file without a video frame
        EXPECT_TRUE(fs::exists(piece)) << "piece at " << start;
        continue;
      }
      const ReadBack r = read_back(piece);
      EXPECT_EQ(static_cast<std::int64_t>(r.frames.size()), end_tick - ticks.tick(start)) << "piece at " << start;
      for (std::size_t k = 0; k < r.frames.size(); ++k) {
        EXPECT_NEAR(r.frames[k].pts * r.info.time_base.value() * rate.value(), static_cast<double>(k), 1e-6);
        shown.push_back(frame_number(r.frames[k].image));
      }
    }
    EXPECT_EQ(shown, expected);
  }
}

TEST(OutputVideoFps, MatchesTheFfmpegFpsFilterFrameCount) {
  if (!have_ffmpeg_cli()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string in = scratch("fps_source.mp4");
  ASSERT_TRUE(write_clip(in, 64, 48, 40, 20, {}).is_ok());
  for (const char* fps : {"10", "13", "30", "7.5"}) {
    SCOPED_TRACE(fps);
    const std::string ref = scratch("fps_ffmpeg.mp4"), out = scratch("fps_ours.mp4");
    ASSERT_EQ(std::system(("ffmpeg -v error -y -i " + in + " -vf fps=" + fps + " -c:v libx264 " + ref).c_str()), 0);
    auto reader = VideoReader::open(in).value();
    EncodeOptions options;
    options.frame_rate = {static_cast<int>(std::lround(std::atof(fps) * 1000)), 1000};
    auto writer = VideoWriter::open(out, reader->info(), options, {}).value();
    VideoFrame f;
    while (reader->read(f).value()) ASSERT_TRUE(writer->write(f).is_ok());
    ASSERT_TRUE(writer->finish().is_ok());
    EXPECT_EQ(read_back(out).frames.size(), read_back(ref).frames.size());
  }
}

TEST(OutputAudioVolume, ZeroWritesNoAudioAndHundredCopiesIt) {
  if (!have_ffmpeg_cli()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string silent = scratch("volume0.mp4"), full = scratch("volume100.mp4");
  AudioSource audio{sine_audio()};
  audio.volume = 0;
  ASSERT_TRUE(write_clip(silent, 64, 48, 40, 20, {}, audio).is_ok());
  EXPECT_FALSE(read_back(silent).info.has_audio);
  audio.volume = 100;
  ASSERT_TRUE(write_clip(full, 64, 48, 40, 20, {}, audio).is_ok());
  EXPECT_TRUE(read_back(full).info.has_audio);
  // Stream copy: the same samples as the source's.
  EXPECT_NEAR(audio_rms(full), audio_rms(sine_audio()), 1e-4);
  EXPECT_NEAR(audio_rms(full), 0.5 / 8 / std::sqrt(2.0), 0.002);  // lavfi's sine has amplitude 1/8
}

TEST(OutputAudioVolume, FiftyHalvesTheRms) {
  if (!have_ffmpeg_cli()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string half = scratch("volume50.mp4");
  AudioSource audio{sine_audio()};
  audio.volume = 50;
  ASSERT_TRUE(write_clip(half, 64, 48, 40, 20, {}, audio).is_ok());
  const double ratio = audio_rms(half) / audio_rms(sine_audio());
  std::printf("volume 50: RMS ratio %.4f\n", ratio);
  EXPECT_NEAR(ratio, 0.5, 0.05);
}

TEST(OutputAudioQuality, HigherQualityGivesMoreBitsWhenReencoding) {
  if (!have_ffmpeg_cli()) GTEST_SKIP() << "ffmpeg CLI not installed";
  AudioSource audio{sine_audio()};
  audio.volume = 90;  // re-encoded
  double rate[2] = {};
  for (int q : {0, 100}) {
    const std::string out = scratch("quality" + std::to_string(q) + ".mp4");
    audio.quality = q;
    ASSERT_TRUE(write_clip(out, 64, 48, 40, 20, {}, audio).is_ok());
    rate[q / 100] = audio_bit_rate(out);
    EXPECT_NEAR(audio_rms(out) / audio_rms(sine_audio()), 0.9, 0.09);
  }
  std::printf("AAC q:a 0.1: %.0f b/s, q:a 2.0: %.0f b/s\n", rate[0], rate[1]);
  EXPECT_GT(rate[1], 1.5 * rate[0]);
}

TEST(OutputOptions, WriterRefusesValuesOutOfRange) {
  VideoInfo info;
  info.width = info.height = 64;
  info.time_base = {1, 20};
  info.frame_rate = {20, 1};
  for (double scale : {0.1, 9.0}) {
    EncodeOptions options;
    options.scale = scale;
    auto w = VideoWriter::open(scratch("bad_scale.mp4"), info, options, {});
    ASSERT_FALSE(w.is_ok());
    EXPECT_NE(w.status().message().find("scale"), std::string::npos) << w.status().message();
  }
  EncodeOptions negative_rate;
  negative_rate.frame_rate = {-5, 1};
  EXPECT_FALSE(VideoWriter::open(scratch("bad_fps.mp4"), info, negative_rate, {}).is_ok());
  if (!have_ffmpeg_cli()) return;
  AudioSource loud{sine_audio()};
  loud.volume = 101;
  auto w = VideoWriter::open(scratch("bad_volume.mp4"), info, {}, loud);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("volume"), std::string::npos) << w.status().message();
  EXPECT_FALSE(fs::exists(scratch("bad_volume.mp4")));
}

// run_swap on an image target without face work: the output is the target resized.
TEST(OutputImageScale, ImageOutputIsTheTargetScaled) {
  const Image target = read_image(kMedia + "astronaut.png").value();
  for (double scale : {0.5, 1.5}) {
    SwapJob job;
    job.target = kMedia + "astronaut.png";
    job.sources = {job.target};
    job.output = scratch("scaled_" + std::to_string(scale) + ".png");
    job.swap_faces = false;
    job.image_scale = scale;
    auto summary = run_swap(job);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    const Image out = read_image(job.output).value();
    EXPECT_EQ(out.width, static_cast<int>(std::lround(target.width * scale)));
    EXPECT_EQ(out.height, static_cast<int>(std::lround(target.height * scale)));
    EXPECT_GT(psnr(out, resize(target, out.width, out.height, Interp::kArea)), 45.0);
  }
}

// run_swap on a video target without face work: scale, fps and volume reach the writer.
TEST(OutputOptions, SwapJobWritesTheVideoWithTheOutputOptions) {
  if (!have_ffmpeg_cli()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string target = scratch("target.mp4");
  ASSERT_TRUE(write_clip(target, 256, 256, 40, 20, {}, AudioSource{sine_audio()}).is_ok());
  SwapJob job;
  job.target = target;
  job.sources = {kMedia + "astronaut.png"};
  job.output = scratch("job_out.mp4");
  job.swap_faces = false;
  job.encode.scale = 0.5;
  job.encode.frame_rate = {10, 1};
  job.audio_volume = 50;
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  const ReadBack r = read_back(job.output);
  EXPECT_EQ(r.info.width, 128);
  EXPECT_EQ(r.info.height, 128);
  EXPECT_EQ(r.frames.size(), 20u);
  EXPECT_NEAR(r.info.duration_s, 2.0, 0.1);
  ASSERT_TRUE(r.info.has_audio);
  EXPECT_NEAR(audio_rms(job.output) / audio_rms(target), 0.5, 0.05);
}

// Segmented runs: every segment is written at the scaled size, and the join applies the volume.
TEST(OutputOptions, SegmentedRunScalesEverySegmentAndDropsTheAudioAtVolumeZero) {
  if (!have_ffmpeg_cli()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string target = scratch("segmented_target.mp4");
  ASSERT_TRUE(write_clip(target, 256, 256, 40, 20, {}, AudioSource{sine_audio()}).is_ok());
  ASSERT_TRUE(read_back(target).info.has_audio);
  SwapJob job;
  job.target = target;
  job.sources = {kMedia + "astronaut.png"};
  job.output = scratch("segmented_out.mp4");
  job.swap_faces = false;
  job.segment_frames = 15;
  job.encode.scale = 0.75;
  job.audio_volume = 0;
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->segments, 3);
  const ReadBack r = read_back(job.output);
  EXPECT_EQ(r.info.width, 192);
  EXPECT_EQ(r.info.height, 192);
  EXPECT_EQ(r.frames.size(), 40u);
  EXPECT_FALSE(r.info.has_audio);
}

TEST(OutputOptions, ValidationNamesTheOption) {
  SwapJob base;
  base.target = kMedia + "astronaut.png";
  base.sources = {base.target};
  base.output = scratch("never.png");
  auto message = [](const SwapJob& job) { return validate_job(job).message(); };
  SwapJob j = base;
  j.encode.scale = 0.1;
  EXPECT_NE(message(j).find("--output-video-scale"), std::string::npos) << message(j);
  j = base;
  j.image_scale = 9;
  EXPECT_NE(message(j).find("--output-image-scale"), std::string::npos) << message(j);
  j = base;
  j.encode.frame_rate = {-1, 1};
  EXPECT_NE(message(j).find("--output-video-fps"), std::string::npos) << message(j);
  j = base;
  j.audio_volume = 101;
  EXPECT_NE(message(j).find("--output-audio-volume"), std::string::npos) << message(j);
  j = base;
  j.audio_quality = 101;
  EXPECT_NE(message(j).find("--output-audio-quality"), std::string::npos) << message(j);
  j = base;
  j.encode.frame_rate = {25, 1};
  j.segment_frames = 10;
  EXPECT_TRUE(validate_job(j).is_ok()) << message(j);  // segmented runs take an output fps
  EXPECT_TRUE(validate_job(base).is_ok());
}

}  // namespace
}  // namespace fswap
