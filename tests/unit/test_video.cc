// Video layer tests: fixtures are made with the ffmpeg CLI (testsrc2 + sine) in FSWAP_TEST_TMP,
// then read, written and read back through fswap's own FFmpeg-library code.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "video/ffmpeg_util.h"
#include "video/media.h"
#include "video/tone_map.h"

extern "C" {
#include <libavutil/imgutils.h>
}

namespace fswap {
namespace {

namespace fs = std::filesystem;

// Outputs of this process's tests; removed when the suite ends.
const fs::path& tmp_dir() {
  static const fs::path dir = fs::path(FSWAP_TEST_TMP) / ("video-" + std::to_string(::getpid()));
  return dir;
}
std::string tmp(const std::string& name) { return (tmp_dir() / name).string(); }

// Inputs made once and shared by every test process (ctest runs each test in its own process,
// possibly in parallel): built in a private directory, then renamed into place atomically.
// Bump the version when a recipe changes.
const fs::path& fixture_dir() {
  static const fs::path dir = fs::path(FSWAP_TEST_TMP) / "video-fixtures-v2";
  return dir;
}
std::string fix(const std::string& name) { return (fixture_dir() / name).string(); }

// Runs a shell command; true on exit status 0.
bool run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Duration in seconds of the first stream of `type` ("a" or "v") of `path`, as ffprobe reports it.
double stream_duration(const std::string& path, const std::string& type) {
  std::string s = capture("ffprobe -v error -select_streams " + type + ":0 -show_entries stream=duration -of csv=p=0 '" +
                          path + "'");
  return s.empty() || s == "N/A" ? -1.0 : std::atof(s.c_str());
}

double psnr(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height || a.channels != b.channels || a.empty()) return 0;
  double se = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    double d = static_cast<double>(a.pixels[i]) - b.pixels[i];
    se += d * d;
  }
  double mse = se / static_cast<double>(a.pixels.size());
  return mse <= 1e-12 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

std::vector<VideoFrame> read_all(const std::string& path, VideoInfo* info = nullptr, const DecodeOptions& decode = {}) {
  std::vector<VideoFrame> frames;
  auto reader = VideoReader::open(path, decode);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (!reader) return frames;
  if (info) *info = (*reader)->info();
  while (true) {
    VideoFrame f;
    auto got = (*reader)->read(f);
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (!got || !*got) break;
    frames.push_back(std::move(f));
  }
  return frames;
}

// Reads `in` and writes every frame to `out` (audio from `audio`); returns the status of the run.
Status transcode(const std::string& in, const std::string& out, const AudioSource& audio, const EncodeOptions& opts = {}) {
  FSWAP_ASSIGN_OR_RETURN(auto reader, VideoReader::open(in));
  FSWAP_ASSIGN_OR_RETURN(auto writer, VideoWriter::open(out, reader->info(), opts, audio));
  VideoFrame frame;
  while (true) {
    FSWAP_ASSIGN_OR_RETURN(bool got, reader->read(frame));
    if (!got) break;
    FSWAP_RETURN_IF_ERROR(writer->write(frame));
  }
  return writer->finish();
}

bool no_part_files_in(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".part-") != std::string::npos) return false;
  }
  return true;
}

class VideoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!run("ffmpeg -version")) {
      skip_ = true;
      return;
    }
    fs::create_directories(tmp_dir());
    ok_ = fs::exists(fixture_dir() / "ready") || make_fixtures();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (std::getenv("FSWAP_KEEP_TEST_TMP") == nullptr) fs::remove_all(tmp_dir(), ec);
  }

  static bool make_fixtures() {
    const fs::path build = fs::path(FSWAP_TEST_TMP) / ("video-fixtures-building-" + std::to_string(::getpid()));
    fs::remove_all(build);
    fs::create_directories(build);
    auto at = [&](const std::string& name) { return (build / name).string(); };
    const std::string ff = "ffmpeg -v error -y ";
    const std::string av = "-f lavfi -i testsrc2=s=320x240:r=30:d=2 -f lavfi -i sine=f=440:r=44100:d=2 ";
    bool ok =
        // faststart puts the index first, so a file cut in half still opens.
        run(ff + av + "-c:v libx264 -preset veryfast -crf 12 -pix_fmt yuv420p -c:a aac -movflags +faststart " +
            at("src.mp4")) &&
        // Jittered timestamps on a 1 ms time base: variable frame rate.
        run(ff + "-f lavfi -i testsrc2=s=160x96:r=30:d=2 -vf 'settb=1/1000,setpts=N/30/TB+0.011/TB*eq(mod(N\\,3)\\,1)' "
                 "-fps_mode passthrough -enc_time_base 1:1000 -c:v libx264 -preset veryfast -pix_fmt yuv420p " +
            at("vfr.mp4")) &&
        run(ff + "-f lavfi -i testsrc2=s=160x96:r=30:d=1 -c:v libx264 -preset veryfast -crf 12 -pix_fmt yuv420p " +
            at("norot.mp4")) &&
        run(ff + "-i " + at("norot.mp4") + " -c copy -metadata:s:v:0 rotate=90 " + at("rot.mp4")) &&
        run(ff + "-i " + at("rot.mp4") + " -frames:v 1 " + at("rot_ffmpeg.png")) &&
        // PCM audio cannot be copied into MP4: it must be re-encoded to AAC.
        run(ff + "-f lavfi -i testsrc2=s=64x48:r=25:d=2 -f lavfi -i sine=f=300:r=48000:d=2 -c:v libx264 -pix_fmt yuv420p "
                 "-c:a pcm_s16le " +
            at("pcm.mkv")) &&
        run(ff + "-f lavfi -i testsrc2=s=320x240:d=1 -frames:v 1 " + at("still.png")) &&
        run(ff + "-f lavfi -i testsrc2=s=320x240:d=1 -frames:v 1 -q:v 2 " + at("still.jpg")) &&
        // An odd-sized 4:2:0 JPEG and the ffmpeg CLI's own decode of it.
        run(ff + "-f lavfi -i testsrc2=s=66x50:d=1 -vf format=rgb24,crop=65:49:0:0 -frames:v 1 -pix_fmt yuvj420p "
                 "-q:v 2 " +
            at("odd.jpg")) &&
        run(ff + "-i " + at("odd.jpg") + " " + at("odd_ref.png")) &&
        // HDR10: the first half second of src.mp4's pattern as PQ on BT.2020, 10-bit HEVC (zimg
        // converts: SDR white → 203 nits, BT.2408's reference white).
        run(ff + "-f lavfi -i testsrc2=s=320x240:r=30:d=0.5 -vf 'format=yuv444p,setparams=color_trc=bt709:"
                 "color_primaries=bt709:colorspace=bt709:range=tv,zscale=t=linear:npl=203,format=gbrpf32le,"
                 "zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=203,format=yuv420p10le' -c:v libx265 "
                 "-x265-params log-level=error -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc " +
            at("hdr_pq.mp4"));
    std::ofstream(at("notes.txt")) << "this is not a video\nat all\n";
    std::ofstream(at("fake.mp4")) << "this is not a video either\n";
    std::ofstream(at("ready")) << "ok\n";
    std::error_code ec;
    if (ok) fs::rename(build, fixture_dir(), ec);  // fails harmlessly if another process won the race
    fs::remove_all(build, ec);
    return ok && fs::exists(fixture_dir() / "ready");
  }
  void SetUp() override {
    if (skip_) GTEST_SKIP() << "ffmpeg CLI not installed (needed to make the fixtures)";
    ASSERT_TRUE(ok_) << "making the fixtures with the ffmpeg CLI failed";
  }
  static inline bool skip_ = false;
  static inline bool ok_ = false;
};

TEST_F(VideoTest, ReaderInfo) {
  auto reader = VideoReader::open(fix("src.mp4"));
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  const VideoInfo& info = (*reader)->info();
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_EQ(info.frame_count, 60);
  EXPECT_NEAR(info.frame_rate.value(), 30.0, 1e-6);
  EXPECT_NEAR(info.duration_s, 2.0, 0.05);
  EXPECT_EQ(info.rotation_degrees, 0);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.audio_codec, "aac");
}

// Asking for NVDEC where there is none (this machine has no GPU; a CPU-only FFmpeg has no CUDA
// hwaccel) decodes on the CPU: the same frames and timestamps, and VideoInfo says so.
TEST_F(VideoTest, CudaDecodingFallsBackToTheCpuWithTheSameFrames) {
  VideoInfo cpu_info, cuda_info;
  auto cpu = read_all(fix("src.mp4"), &cpu_info);
  auto cuda = read_all(fix("src.mp4"), &cuda_info, {DecodeOptions::Hw::kCuda, 0});
  if (cuda_info.gpu_decoding) GTEST_SKIP() << "this machine decodes on a GPU (tests/gpu/test_cuda_video checks that path)";
  EXPECT_FALSE(cpu_info.gpu_decoding);
  ASSERT_EQ(cpu.size(), 60u);
  ASSERT_EQ(cuda.size(), cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(cuda[i].pts, cpu[i].pts) << "frame " << i;
    EXPECT_TRUE(cuda[i].image.pixels == cpu[i].image.pixels) << "frame " << i;
  }
}

TEST_F(VideoTest, RoundTripKeepsFramesTimestampsAndAudio) {
  VideoInfo in_info, out_info;
  auto src = read_all(fix("src.mp4"), &in_info);
  ASSERT_EQ(src.size(), 60u);
  ASSERT_TRUE(transcode(fix("src.mp4"), tmp("out.mp4"), {fix("src.mp4")}).is_ok());
  EXPECT_TRUE(no_part_files_in(tmp_dir()));
  auto out = read_all(tmp("out.mp4"), &out_info);
  ASSERT_EQ(out.size(), src.size());
  EXPECT_EQ(out_info.time_base.num, in_info.time_base.num);
  EXPECT_EQ(out_info.time_base.den, in_info.time_base.den);
  double worst = 99, sum = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    EXPECT_EQ(out[i].pts, src[i].pts) << "frame " << i;
    EXPECT_EQ(out[i].index, static_cast<std::int64_t>(i));
    const double p = psnr(src[i].image, out[i].image);
    worst = std::min(worst, p);
    sum += p;
  }
  // testsrc2's saturated colour edges are hard on 4:2:0: the ffmpeg CLI itself (yuv→yuv, no RGB
  // step) gets 39.0 dB mean at crf 18 here; one extra RGB round trip costs about 3.5 dB.
  EXPECT_GT(sum / static_cast<double>(src.size()), 35.0);
  EXPECT_GT(worst, 33.0);
  EXPECT_TRUE(out_info.has_audio);
  EXPECT_EQ(out_info.audio_codec, "aac");
  EXPECT_NEAR(out_info.frame_rate.value(), 30.0, 0.01);
  const double frame_s = 1.0 / 30;
  EXPECT_NEAR(stream_duration(tmp("out.mp4"), "a"), stream_duration(fix("src.mp4"), "a"), frame_s);
  EXPECT_NEAR(stream_duration(tmp("out.mp4"), "a"), stream_duration(tmp("out.mp4"), "v"), frame_s);
}

TEST_F(VideoTest, MatroskaOutputAndPcmAudioReencodedToAac) {
  ASSERT_TRUE(transcode(fix("pcm.mkv"), tmp("pcm_out.mp4"), {fix("pcm.mkv")}).is_ok());
  VideoInfo info;
  auto frames = read_all(tmp("pcm_out.mp4"), &info);
  EXPECT_EQ(frames.size(), 50u);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_NEAR(stream_duration(tmp("pcm_out.mp4"), "a"), 2.0, 1.0 / 25);

  ASSERT_TRUE(transcode(fix("src.mp4"), tmp("out.mkv"), {fix("src.mp4")}).is_ok());
  auto mkv = read_all(tmp("out.mkv"), &info);
  EXPECT_EQ(mkv.size(), 60u);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.audio_codec, "aac");  // stream copy
}

TEST_F(VideoTest, VariableFrameRateKeepsExactTimestamps) {
  VideoInfo in_info, out_info;
  auto src = read_all(fix("vfr.mp4"), &in_info);
  ASSERT_EQ(src.size(), 60u);
  // The fixture really is VFR: frame intervals differ.
  std::int64_t min_delta = INT64_MAX, max_delta = 0;
  for (size_t i = 1; i < src.size(); ++i) {
    min_delta = std::min(min_delta, src[i].pts - src[i - 1].pts);
    max_delta = std::max(max_delta, src[i].pts - src[i - 1].pts);
  }
  EXPECT_LT(min_delta, max_delta);

  for (const char* ext : {"mp4", "mov"}) {
    const std::string out_path = tmp(std::string("vfr_out.") + ext);
    ASSERT_TRUE(transcode(fix("vfr.mp4"), out_path, {}).is_ok()) << ext;
    auto out = read_all(out_path, &out_info);
    ASSERT_EQ(out.size(), src.size()) << ext;
    ASSERT_EQ(out_info.time_base.den, in_info.time_base.den) << ext;
    EXPECT_FALSE(out_info.has_audio);
    for (size_t i = 0; i < src.size(); ++i) EXPECT_EQ(out[i].pts, src[i].pts) << ext << " frame " << i;
  }
}

TEST_F(VideoTest, RotatedInputComesOutUpright) {
  auto reader = VideoReader::open(fix("rot.mp4"));
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  const VideoInfo& info = (*reader)->info();
  EXPECT_NE(info.rotation_degrees, 0);
  EXPECT_EQ(info.width, 96);
  EXPECT_EQ(info.height, 160);
  VideoFrame f;
  auto got = (*reader)->read(f);
  ASSERT_TRUE(got.is_ok() && *got);
  EXPECT_EQ(f.image.width, 96);
  EXPECT_EQ(f.image.height, 160);
  // The ffmpeg CLI rotates on decode too: its first frame is the oracle.
  auto oracle = read_image(fix("rot_ffmpeg.png"));
  ASSERT_TRUE(oracle.is_ok()) << oracle.status().to_string();
  EXPECT_GT(psnr(f.image, *oracle), 30.0);

  // Written back out, the pixels are upright and carry no rotation.
  ASSERT_TRUE(transcode(fix("rot.mp4"), tmp("rot_out.mp4"), {}).is_ok());
  VideoInfo out_info;
  auto out = read_all(tmp("rot_out.mp4"), &out_info);
  EXPECT_EQ(out_info.rotation_degrees, 0);
  EXPECT_EQ(out_info.width, 96);
  EXPECT_EQ(out_info.height, 160);
  ASSERT_FALSE(out.empty());
  EXPECT_GT(psnr(out[0].image, *oracle), 30.0);
}

TEST_F(VideoTest, OddSizesArePaddedByRepeatingTheEdge) {
  auto src = read_all(fix("src.mp4"));
  ASSERT_GE(src.size(), 10u);
  VideoInfo info;
  info.width = 65;
  info.height = 49;
  info.time_base = {1, 30};
  info.frame_rate = {30, 1};
  std::vector<Image> crops;
  {
    auto writer = VideoWriter::open(tmp("odd.mp4"), info, {}, {});
    ASSERT_TRUE(writer.is_ok()) << writer.status().to_string();
    for (int i = 0; i < 10; ++i) {
      VideoFrame f;
      f.image = crop(src[static_cast<size_t>(i)].image, Rect{100, 80, 65, 49});
      f.pts = i;
      f.index = i;
      crops.push_back(f.image);
      ASSERT_TRUE((*writer)->write(f).is_ok());
    }
    ASSERT_TRUE((*writer)->finish().is_ok());
  }
  VideoInfo out_info;
  auto out = read_all(tmp("odd.mp4"), &out_info);
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(out_info.width, 66);
  EXPECT_EQ(out_info.height, 50);
  for (size_t i = 0; i < out.size(); ++i) {
    Image inner = crop(out[i].image, Rect{0, 0, 65, 49});
    EXPECT_GT(psnr(inner, crops[i]), 30.0) << "frame " << i;
    // The padding repeats the last real column/row (up to compression error).
    Image pad_col = crop(out[i].image, Rect{65, 0, 1, 49});
    Image last_col = crop(crops[i], Rect{64, 0, 1, 49});
    EXPECT_GT(psnr(pad_col, last_col), 25.0);
    Image pad_row = crop(out[i].image, Rect{0, 49, 65, 1});
    Image last_row = crop(crops[i], Rect{0, 48, 65, 1});
    EXPECT_GT(psnr(pad_row, last_row), 25.0);
  }
}

TEST_F(VideoTest, TrimmedAudioSource) {
  AudioSource audio{fix("src.mp4"), 0.5, 1.5};
  ASSERT_TRUE(transcode(fix("src.mp4"), tmp("trim.mp4"), audio).is_ok());
  EXPECT_NEAR(stream_duration(tmp("trim.mp4"), "a"), 1.0, 1.0 / 30);
  // Re-encode path trims too (sample-accurately).
  AudioSource pcm{fix("pcm.mkv"), 0.25, 1.25};
  ASSERT_TRUE(transcode(fix("pcm.mkv"), tmp("trim_pcm.mp4"), pcm).is_ok());
  EXPECT_NEAR(stream_duration(tmp("trim_pcm.mp4"), "a"), 1.0, 1.0 / 25);
}

TEST_F(VideoTest, TruncatedFileDecodesWhatIsThere) {
  const auto size = fs::file_size(fix("src.mp4"));
  fs::copy_file(fix("src.mp4"), tmp("half.mp4"), fs::copy_options::overwrite_existing);
  fs::resize_file(tmp("half.mp4"), size / 2);
  auto reader = VideoReader::open(tmp("half.mp4"));
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  int frames = 0;
  VideoFrame f;
  while (true) {
    auto got = (*reader)->read(f);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    if (!*got) break;
    ++frames;
  }
  EXPECT_GT(frames, 0);
  EXPECT_LT(frames, 60);
  auto again = (*reader)->read(f);  // stays at the end
  ASSERT_TRUE(again.is_ok());
  EXPECT_FALSE(*again);
}

TEST_F(VideoTest, NotAMediaFileIsInvalidInput) {
  for (const char* name : {"notes.txt", "fake.mp4"}) {
    const std::string path = fix(name);
    auto reader = VideoReader::open(path);
    ASSERT_FALSE(reader.is_ok()) << name;
    EXPECT_EQ(reader.status().code(), StatusCode::kInvalidInput) << reader.status().to_string();
    EXPECT_NE(reader.status().message().find(path), std::string::npos) << reader.status().message();
    auto kind = probe_media(path);
    ASSERT_FALSE(kind.is_ok()) << name;
    EXPECT_EQ(kind.status().code(), StatusCode::kInvalidInput);
    auto img = read_image(path);
    ASSERT_FALSE(img.is_ok()) << name;
    EXPECT_EQ(img.status().code(), StatusCode::kInvalidInput);
  }
  // A file with audio only has no video stream.
  ASSERT_TRUE(run("ffmpeg -v error -y -f lavfi -i sine=d=0.5 " + tmp("audio_only.m4a")));
  auto reader = VideoReader::open(tmp("audio_only.m4a"));
  ASSERT_FALSE(reader.is_ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(reader.status().message().find("no video stream"), std::string::npos) << reader.status().message();
}

TEST_F(VideoTest, MissingFileIsNotFound) {
  const std::string path = tmp("does_not_exist.mp4");
  auto reader = VideoReader::open(path);
  ASSERT_FALSE(reader.is_ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reader.status().message(), path + ": no such file");
  EXPECT_EQ(read_image(path).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(probe_media(path).status().code(), StatusCode::kNotFound);
  // A missing audio source is reported, not silently dropped.
  VideoInfo info;
  info.width = 64;
  info.height = 48;
  info.time_base = {1, 25};
  info.frame_rate = {25, 1};
  auto writer = VideoWriter::open(tmp("never.mp4"), info, {}, {path});
  ASSERT_FALSE(writer.is_ok());
  EXPECT_EQ(writer.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(tmp("never.mp4")));
  EXPECT_TRUE(no_part_files_in(tmp_dir()));
}

TEST_F(VideoTest, BadOutputPathsFailAndLeaveNothing) {
  VideoInfo info;
  info.width = 64;
  info.height = 48;
  info.time_base = {1, 25};
  info.frame_rate = {25, 1};
  const fs::path missing_dir = tmp_dir() / "no_such_dir";
  auto w = VideoWriter::open((missing_dir / "out.mp4").string(), info, {}, {});
  ASSERT_FALSE(w.is_ok());
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(w.status().message().find(missing_dir.string()), std::string::npos) << w.status().message();
  EXPECT_FALSE(fs::exists(missing_dir));

  auto avi = VideoWriter::open(tmp("out.avi"), info, {}, {});
  ASSERT_FALSE(avi.is_ok());
  EXPECT_EQ(avi.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(avi.status().message().find(".avi"), std::string::npos) << avi.status().message();

  EXPECT_FALSE(write_image((missing_dir / "x.png").string(), Image(8, 8, 3)).is_ok());
  EXPECT_FALSE(fs::exists(missing_dir));
  EXPECT_TRUE(no_part_files_in(tmp_dir()));
}

TEST_F(VideoTest, UnfinishedWriterLeavesNoFile) {
  VideoInfo info;
  info.width = 64;
  info.height = 48;
  info.time_base = {1, 25};
  info.frame_rate = {25, 1};
  const std::string path = tmp("unfinished.mp4");
  {
    auto w = VideoWriter::open(path, info, {}, {fix("src.mp4")});
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    for (int i = 0; i < 5; ++i) {
      VideoFrame f;
      f.image = Image(64, 48, 3, static_cast<std::uint8_t>(40 * i));
      f.pts = i;
      ASSERT_TRUE((*w)->write(f).is_ok());
    }
    EXPECT_FALSE(no_part_files_in(tmp_dir()));  // work in progress lives in a temporary file
    // Wrong frame size and non-increasing pts are rejected.
    VideoFrame bad;
    bad.image = Image(32, 48, 3);
    bad.pts = 10;
    EXPECT_EQ((*w)->write(bad).code(), StatusCode::kInvalidInput);
    VideoFrame same;
    same.image = Image(64, 48, 3);
    same.pts = 4;
    EXPECT_EQ((*w)->write(same).code(), StatusCode::kInvalidInput);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(no_part_files_in(tmp_dir()));
}

// HD is written with the BT.709 matrix, SD with BT.601 (and tagged so): the luma of a known
// colour, read back raw by the ffmpeg CLI, says which matrix was used.
TEST_F(VideoTest, ColourMatrixFollowsSizeAndTags) {
  struct Case {
    int w, h;
    const char* tag;
    double kr, kb;
  };
  for (const Case& c : {Case{1280, 720, "bt709", 0.2126, 0.0722}, Case{320, 240, "smpte170m", 0.299, 0.114}}) {
    VideoInfo info;
    info.width = c.w;
    info.height = c.h;
    info.time_base = {1, 25};
    info.frame_rate = {25, 1};
    const std::string path = tmp("colour_" + std::to_string(c.h) + ".mp4");
    {
      auto w = VideoWriter::open(path, info, {}, {});
      ASSERT_TRUE(w.is_ok()) << w.status().to_string();
      VideoFrame f;
      f.image = Image(c.w, c.h, 3);
      for (size_t i = 0; i < f.image.pixels.size(); i += 3) {
        f.image.pixels[i] = 200;
        f.image.pixels[i + 1] = 40;
        f.image.pixels[i + 2] = 90;
      }
      for (int i = 0; i < 2; ++i) {
        f.pts = i;
        ASSERT_TRUE((*w)->write(f).is_ok());
      }
      ASSERT_TRUE((*w)->finish().is_ok());
    }
    EXPECT_EQ(capture("ffprobe -v error -show_entries stream=color_space -of csv=p=0 " + path), c.tag);
    const std::string raw = tmp("colour.yuv");
    ASSERT_TRUE(run("ffmpeg -v error -y -i " + path + " -frames:v 1 -f rawvideo -pix_fmt yuv420p " + raw));
    std::ifstream in(raw, std::ios::binary);
    const int y = in.get();
    const double luma = c.kr * 200 + (1 - c.kr - c.kb) * 40 + c.kb * 90;
    EXPECT_NEAR(y, 16 + 219 * luma / 255, 1.5) << c.tag;
    auto frames = read_all(path);
    ASSERT_FALSE(frames.empty());
    const Image& img = frames[0].image;
    EXPECT_NEAR(img.at(c.w / 2, c.h / 2, 0), 200, 3);
    EXPECT_NEAR(img.at(c.w / 2, c.h / 2, 1), 40, 3);
    EXPECT_NEAR(img.at(c.w / 2, c.h / 2, 2), 90, 3);
  }
}

Image test_pattern(int w, int h) {
  Image img(w, h, 3);
  std::uint32_t seed = 12345;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      seed = seed * 1664525u + 1013904223u;
      img.at(x, y, 0) = static_cast<std::uint8_t>(x * 255 / (w - 1));
      img.at(x, y, 1) = static_cast<std::uint8_t>(y * 255 / (h - 1));
      img.at(x, y, 2) = static_cast<std::uint8_t>(((x / 8 + y / 8) % 2) * 160 + (seed >> 28));
    }
  }
  return img;
}

TEST_F(VideoTest, ImageRoundTrips) {
  const Image img = test_pattern(97, 63);  // odd sizes on purpose
  ASSERT_TRUE(write_image(tmp("rt.png"), img).is_ok());
  auto png = read_image(tmp("rt.png"));
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  EXPECT_EQ(png->pixels, img.pixels);  // lossless, exact
  EXPECT_EQ(png->width, 97);

  auto still = read_image(fix("still.png"));
  ASSERT_TRUE(still.is_ok()) << still.status().to_string();
  ASSERT_EQ(still->width, 320);
  ASSERT_TRUE(write_image(tmp("rt.jpg"), *still, 90).is_ok());
  auto jpg = read_image(tmp("rt.jpg"));
  ASSERT_TRUE(jpg.is_ok()) << jpg.status().to_string();
  EXPECT_GT(psnr(*jpg, *still), 30.0);

  ASSERT_TRUE(write_image(tmp("rt.webp"), *still, 90).is_ok());
  auto webp = read_image(tmp("rt.webp"));
  ASSERT_TRUE(webp.is_ok()) << webp.status().to_string();
  EXPECT_EQ(webp->width, 320);
  EXPECT_EQ(webp->height, 240);
  EXPECT_GT(psnr(*webp, *still), 25.0);

  ASSERT_TRUE(write_image(tmp("rt.bmp"), img).is_ok());
  auto bmp = read_image(tmp("rt.bmp"));
  ASSERT_TRUE(bmp.is_ok()) << bmp.status().to_string();
  EXPECT_EQ(bmp->pixels, img.pixels);

  // A JPEG written by the ffmpeg CLI decodes close to the PNG of the same frame.
  auto cli_jpg = read_image(fix("still.jpg"));
  ASSERT_TRUE(cli_jpg.is_ok()) << cli_jpg.status().to_string();
  EXPECT_GT(psnr(*cli_jpg, *still), 28.0);

  auto odd = read_image(fix("odd.jpg"));
  auto odd_ref = read_image(fix("odd_ref.png"));
  ASSERT_TRUE(odd.is_ok() && odd_ref.is_ok());
  EXPECT_EQ(odd->width, 65);
  EXPECT_EQ(odd->height, 49);
  EXPECT_GT(psnr(*odd, *odd_ref), 35.0);

  EXPECT_EQ(write_image(tmp("x.gif"), img).code(), StatusCode::kInvalidInput);
  EXPECT_TRUE(no_part_files_in(tmp_dir()));
}

TEST_F(VideoTest, ProbeMediaByContent) {
  auto png = probe_media(fix("still.png"));
  ASSERT_TRUE(png.is_ok()) << png.status().to_string();
  EXPECT_EQ(*png, MediaKind::kImage);
  auto jpg = probe_media(fix("still.jpg"));
  ASSERT_TRUE(jpg.is_ok()) << jpg.status().to_string();
  EXPECT_EQ(*jpg, MediaKind::kImage);
  auto mp4 = probe_media(fix("src.mp4"));
  ASSERT_TRUE(mp4.is_ok()) << mp4.status().to_string();
  EXPECT_EQ(*mp4, MediaKind::kVideo);
  // Content, not name: a PNG named .mp4 is still an image.
  fs::copy_file(fix("still.png"), tmp("png_named.mp4"), fs::copy_options::overwrite_existing);
  auto renamed = probe_media(tmp("png_named.mp4"));
  ASSERT_TRUE(renamed.is_ok()) << renamed.status().to_string();
  EXPECT_EQ(*renamed, MediaKind::kImage);
}

}  // namespace
}  // namespace fswap

namespace fswap {
namespace {

TEST(ToneMap, PqAndHlgCurvesAtKnownPoints) {
  EXPECT_NEAR(HdrToSdr::pq_to_nits(0.f), 0.f, 1e-6);
  EXPECT_NEAR(HdrToSdr::pq_to_nits(1.f), 10000.f, 0.5f);
  EXPECT_NEAR(HdrToSdr::pq_to_nits(0.5081f), 100.f, 1.f);   // ST 2084: 100 nits ≈ 0.5081
  EXPECT_NEAR(HdrToSdr::pq_to_nits(0.5806f), 203.f, 2.f);   // BT.2408 reference white
  EXPECT_NEAR(HdrToSdr::hlg_to_scene(0.5f), 1.f / 12.f, 1e-6);
  EXPECT_NEAR(HdrToSdr::hlg_to_scene(1.f), 1.f, 1e-5);
}

TEST(ToneMap, GreysStayNeutralAndTheCurveIsMonotonic) {
  for (HdrTransfer t : {HdrTransfer::kPq, HdrTransfer::kHlg}) {
    HdrToSdr tone(t);
    std::vector<std::uint16_t> ramp;
    for (int v = 0; v <= 65535; v += 257) ramp.insert(ramp.end(), {std::uint16_t(v), std::uint16_t(v), std::uint16_t(v)});
    const int n = static_cast<int>(ramp.size() / 3);
    std::vector<std::uint8_t> out(ramp.size());
    tone.convert(ramp.data(), n, out.data());
    EXPECT_EQ(out[0], 0);
    for (int i = 0; i < n; ++i) {
      EXPECT_NEAR(out[3 * i], out[3 * i + 1], 1);  // the primaries matrix's rows sum to 1 ± 1e-6
      EXPECT_NEAR(out[3 * i], out[3 * i + 2], 1);
      if (i > 0) {
        EXPECT_GE(out[3 * i], out[3 * (i - 1)]);
      }
    }
    EXPECT_GE(out[3 * (n - 1)], 250);  // the signal's top reaches SDR white
  }
  // PQ reference white (203 nits) lands at 70% linear: BT.709 OETF(0.7) = 0.837 → 213.
  HdrToSdr pq(HdrTransfer::kPq);
  const auto white = static_cast<std::uint16_t>(std::lround(0.5806 * 65535));
  const std::uint16_t px[3] = {white, white, white};
  std::uint8_t o[3];
  pq.convert(px, 1, o);
  EXPECT_NEAR(o[0], 213, 3);
}

TEST_F(VideoTest, HdrPqClipIsToneMappedToSdr) {
  auto hdr = read_all(fix("hdr_pq.mp4"));
  auto sdr = read_all(fix("src.mp4"));
  ASSERT_FALSE(hdr.empty());
  ASSERT_FALSE(sdr.empty());
  const Image& a = hdr[0].image;
  const Image& b = sdr[0].image;
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  // Same picture, SDR-like levels: luma strongly correlated with the SDR encode's, mean a little
  // lower (reference white sits at 70% linear to leave room for highlights).
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  const double n = static_cast<double>(a.width) * a.height;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x) {
      const double la = 0.2126 * a.at(x, y, 0) + 0.7152 * a.at(x, y, 1) + 0.0722 * a.at(x, y, 2);
      const double lb = 0.2126 * b.at(x, y, 0) + 0.7152 * b.at(x, y, 1) + 0.0722 * b.at(x, y, 2);
      sa += la;
      sb += lb;
      saa += la * la;
      sbb += lb * lb;
      sab += la * lb;
    }
  const double cov = sab / n - (sa / n) * (sb / n);
  const double corr = cov / std::sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
  std::printf("HDR PQ frame: mean luma %.1f vs SDR %.1f, correlation %.4f\n", sa / n, sb / n, corr);
  EXPECT_GT(corr, 0.97);
  EXPECT_GT(sa / sb, 0.7);
  EXPECT_LT(sa / sb, 1.05);
}

}  // namespace
}  // namespace fswap

// BandedScaler's bands, converted in parallel, give exactly one whole-frame sws_scale's bytes: the
// conversions it splits (yuv420p → rgb24, even heights) and those it does not (odd heights, the
// pairs whose bands would differ).
TEST(BandedScaler, BandsEqualOneWholeFrameConversion) {
  using namespace fswap;
  using namespace fswap::ffmpeg;
  set_worker_threads(7);  // bands of uneven heights
  struct Case {
    AVPixelFormat from, to;
  };
  const Case cases[] = {{AV_PIX_FMT_YUV420P, AV_PIX_FMT_RGB24}, {AV_PIX_FMT_NV12, AV_PIX_FMT_RGB24},
                        {AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUV422P, AV_PIX_FMT_RGB24}};
  const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
  const int* rgb = sws_getCoefficients(SWS_CS_DEFAULT);
  unsigned seed = 7;
  for (const Case& c : cases) {
    for (auto [w, h] : {std::pair{1920, 1080}, std::pair{333, 251}, std::pair{334, 250}, std::pair{1918, 1080}, std::pair{640, 131}, std::pair{640, 130}}) {
      const bool from_rgb = c.from == AV_PIX_FMT_RGB24;
      FramePtr src = make_frame(), whole = make_frame(), banded = make_frame();
      for (auto [f, fmt] : {std::pair{src.get(), c.from}, std::pair{whole.get(), c.to}, std::pair{banded.get(), c.to}}) {
        f->format = fmt;
        f->width = w;
        f->height = h;
        ASSERT_EQ(av_frame_get_buffer(f, 0), 0);
      }
      for (int p = 0; p < 4 && src->data[p]; ++p) {
        const int rows = p > 0 && !from_rgb ? -((-h) >> av_pix_fmt_desc_get(c.from)->log2_chroma_h) : h;
        for (int i = 0; i < rows * src->linesize[p]; ++i) src->data[p][i] = static_cast<uint8_t>((seed = seed * 1103515245 + 12345) >> 16);
      }
      const int* from_coeffs = from_rgb ? rgb : bt709;
      const int* to_coeffs = from_rgb ? bt709 : rgb;
      SwsPtr one(sws_getContext(w, h, c.from, w, h, c.to, kSwsFlags, nullptr, nullptr, nullptr));
      ASSERT_TRUE(one);
      sws_setColorspaceDetails(one.get(), from_coeffs, from_rgb ? 1 : 0, to_coeffs, from_rgb ? 0 : 1, 0, 1 << 16, 1 << 16);
      sws_scale(one.get(), src->data, src->linesize, 0, h, whole->data, whole->linesize);
      BandedScaler scaler;
      ASSERT_TRUE(scaler.configure(w, h, c.from, c.to, from_coeffs, from_rgb ? 1 : 0, to_coeffs, from_rgb ? 0 : 1).is_ok());
      scaler.scale(src->data, src->linesize, banded->data, banded->linesize);
      const AVPixFmtDescriptor* to = av_pix_fmt_desc_get(c.to);
      for (int p = 0; p < 4 && whole->data[p]; ++p) {
        const int rows = p > 0 && !(to->flags & AV_PIX_FMT_FLAG_RGB) ? -((-h) >> to->log2_chroma_h) : h;
        const int bytes = av_image_get_linesize(c.to, w, p);
        int differing = 0;
        for (int y = 0; y < rows; ++y)
          differing += std::memcmp(whole->data[p] + y * whole->linesize[p], banded->data[p] + y * banded->linesize[p], bytes) != 0;
        EXPECT_EQ(differing, 0) << av_get_pix_fmt_name(c.from) << " → " << av_get_pix_fmt_name(c.to) << " " << w << "x"
                                << h << " plane " << p << ": rows that differ";
      }
    }
  }
  set_worker_threads(0);
}
