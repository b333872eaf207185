// End-to-end tests: run the fswap binary, then inspect what it wrote.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "face/analyser.h"
#include "face/selector.h"
#include "imaging/transform.h"
#include "support/replicas.h"
#include "support/run_fswap.h"
#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

using test::RunResult;
using test::run_fswap;

std::string scratch(const std::string& name) { return test::scratch_path("cli", name); }

// PSNR over the pixels outside every box (boxes grown by `grow` × their size on each side).
double psnr_outside(const Image& a, const Image& b, const std::vector<FaceBox>& boxes, float grow) {
  double se = 0;
  long n = 0;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x) {
      bool inside = false;
      for (const auto& f : boxes) {
        const float gx = f.width() * grow, gy = f.height() * grow;
        inside |= x >= f.x1 - gx && x < f.x2 + gx && y >= f.y1 - gy && y < f.y2 + gy;
      }
      if (inside) continue;
      for (int c = 0; c < 3; ++c) {
        const double d = double(a.at(x, y, c)) - b.at(x, y, c);
        se += d * d;
      }
      n += 3;
    }
  if (n == 0 || se == 0) return 99;
  return 10 * std::log10(255.0 * 255.0 / (se / n));
}

// The analysis models, loaded once for all tests.
class Analysis {
 public:
  static Analysis& get() {
    static Analysis a;
    return a;
  }
  std::vector<Face> faces(const Image& image) {
    auto f = analyser_->analyse(image, /*embed=*/false);
    EXPECT_TRUE(f.is_ok()) << f.status().to_string();
    return f ? *f : std::vector<Face>{};
  }
  // Embedding of the largest face, empty when there is none.
  std::vector<float> identity(const Image& image) {
    auto all = faces(image);
    if (all.empty()) return {};
    auto& f = *std::max_element(all.begin(), all.end(), [](const Face& a, const Face& b) { return a.box.area() < b.box.area(); });
    EXPECT_TRUE(analyser_->embed(image, f).is_ok());
    return f.embedding;
  }

 private:
  Analysis() {
    engine_ = std::move(make_engine("ort").value());
    AnalyserOptions o;
    o.models_dir = kModels;
    analyser_ = std::move(FaceAnalyser::load(*engine_, o).value());
  }
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<FaceAnalyser> analyser_;
};

std::vector<float> source_identity() {
  static const std::vector<float> id = Analysis::get().identity(read_image(kMedia + "astronaut.png").value());
  return id;
}

TEST(CliImage, SwapsAFaceIntoAPhoto) {
  const std::string out = scratch("messi_swapped.png");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 faces swapped"), std::string::npos) << r.output;
  const Image before = read_image(kMedia + "messi5.jpg").value();
  const Image after = read_image(out).value();
  ASSERT_EQ(after.width, before.width);
  ASSERT_EQ(after.height, before.height);
  const auto boxes = Analysis::get().faces(before);
  ASSERT_FALSE(boxes.empty());
  std::vector<FaceBox> face_boxes;
  for (const auto& f : boxes) face_boxes.push_back(f.box);
  EXPECT_GE(psnr_outside(before, after, face_boxes, 0.f), 35.0);
  const float sim_before = embedding_similarity(Analysis::get().identity(before), source_identity());
  const float sim_after = embedding_similarity(Analysis::get().identity(after), source_identity());
  std::printf("identity similarity to the source: before %.3f, after %.3f\n", sim_before, sim_after);
  EXPECT_GT(sim_after - sim_before, 0.15f);
}

struct ClipCheck {
  double psnr_outside_min = 99;
  double similarity_gain = 0;  // mean over sampled frames of (after − before)
  int sampled = 0;
};

// Compares input and output clips frame by frame (every `step`-th frame for the face metrics).
ClipCheck compare_clips(const std::string& input, const std::string& output, int step) {
  ClipCheck c;
  auto in = VideoReader::open(input).value();
  auto out = VideoReader::open(output).value();
  VideoFrame a, b;
  double gain = 0;
  for (int i = 0;; ++i) {
    const bool got_a = in->read(a).value(), got_b = out->read(b).value();
    if (!got_a || !got_b) break;
    if (i % step) continue;
    const auto faces = Analysis::get().faces(a.image);
    std::vector<FaceBox> boxes;
    for (const auto& f : faces) boxes.push_back(f.box);
    c.psnr_outside_min = std::min(c.psnr_outside_min, psnr_outside(a.image, b.image, boxes, 0.f));
    const auto id_a = Analysis::get().identity(a.image), id_b = Analysis::get().identity(b.image);
    if (id_a.empty() || id_b.empty()) continue;
    gain += embedding_similarity(id_b, source_identity()) - embedding_similarity(id_a, source_identity());
    ++c.sampled;
  }
  c.similarity_gain = c.sampled ? gain / c.sampled : 0;
  return c;
}

void check_video_swap(const std::string& clip) {
  const std::string input = kMedia + clip;
  ASSERT_TRUE(fs::exists(input)) << input << " missing: run scripts/make_media.sh";
  const std::string out = scratch("swapped_" + clip);
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + input + " -o " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const VideoInfo in_info = VideoReader::open(input).value()->info();
  auto reader = VideoReader::open(out).value();
  const VideoInfo out_info = reader->info();
  EXPECT_EQ(out_info.width, in_info.width);
  EXPECT_EQ(out_info.height, in_info.height);
  EXPECT_NEAR(static_cast<double>(out_info.frame_count), static_cast<double>(in_info.frame_count), 1.0);
  EXPECT_NEAR(out_info.duration_s, in_info.duration_s, 1.5 / in_info.frame_rate.value());
  EXPECT_EQ(out_info.has_audio, in_info.has_audio);
  // Every frame decodes.
  VideoFrame f;
  std::int64_t decoded = 0;
  while (reader->read(f).value()) ++decoded;
  EXPECT_NEAR(static_cast<double>(decoded), static_cast<double>(in_info.frame_count), 1.0);

  const ClipCheck c = compare_clips(input, out, 15);
  std::printf("%s: min PSNR outside faces %.1f dB, identity gain %.3f over %d frames\n", clip.c_str(),
              c.psnr_outside_min, c.similarity_gain, c.sampled);
  EXPECT_GE(c.psnr_outside_min, 35.0);
  EXPECT_GE(c.sampled, 5);
  EXPECT_GT(c.similarity_gain, 0.15);
}

TEST(CliVideo, Swaps720pClipKeepingAudioAndBackground) { check_video_swap("messi_720p.mp4"); }
TEST(CliVideo, Swaps1080pClipKeepingAudioAndBackground) { check_video_swap("messi_1080p.mp4"); }

TEST(CliVideo, TrimKeepsTheRequestedFrames) {
  const std::string out = scratch("trimmed.mp4");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia +
                           "messi_720p.mp4 -o " + out + " --trim-frame-start 30 --trim-frame-end 90");
  ASSERT_EQ(r.code, 0) << r.output;
  const VideoInfo info = VideoReader::open(out).value()->info();
  EXPECT_NEAR(static_cast<double>(info.frame_count), 60.0, 1.0);
  EXPECT_TRUE(info.has_audio);
}

// --device cpu,cpu: the clip split into two parts with their own sessions, joined with the audio.
TEST(CliVideo, DeviceListSplitsTheClipAndJoinsIt) {
  const std::string out = scratch("two_devices.mp4");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi_720p.mp4 -o " + out +
                           " --trim-frame-end 40 --device cpu,cpu --segment-frames 10");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("joined 4 segments"), std::string::npos) << r.output;
  const VideoInfo info = VideoReader::open(out).value()->info();
  EXPECT_NEAR(static_cast<double>(info.frame_count), 40.0, 1.0);
  EXPECT_TRUE(info.has_audio);
}

TEST(CliBadInput, BadDeviceListOrSegmentFlags) {
  const std::string out = scratch("bad_devices.mp4");
  const std::string swap = "swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi_720p.mp4 -o " + out;
  const auto list = run_fswap(swap + " --device cpu,banana");
  EXPECT_EQ(list.code, 2) << list.output;
  EXPECT_NE(list.output.find("'banana'"), std::string::npos) << list.output;
  const auto dir = run_fswap(swap + " --segment-dir " + scratch("segments"));
  EXPECT_EQ(dir.code, 2) << dir.output;
  EXPECT_NE(dir.output.find("--segment-frames"), std::string::npos) << dir.output;
  EXPECT_FALSE(fs::exists(out));
}

// Bad input: exit code 2, a message naming the file, nothing at the output path.
void expect_rejected(const std::string& args, const std::string& out, const std::string& must_mention) {
  const auto r = run_fswap(args);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(must_mention), std::string::npos) << "message should name " << must_mention << ":\n" << r.output;
  EXPECT_FALSE(fs::exists(out)) << out << " was written";
  // No temporary files left next to the output either.
  const fs::path dir = fs::path(out).parent_path();
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << e.path();
  }
}

// The detector flags: checked before any work; margin and angles need one of FaceFusion's detectors.
TEST(CliBadInput, DetectorSizeMarginAndAngles) {
  const std::string out = scratch("detector_flags.png");
  const std::string base = "swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out;
  const auto size = run_fswap(base + " --face-detector-size 641x641");
  EXPECT_EQ(size.code, 2) << size.output;
  EXPECT_NE(size.output.find("--face-detector-size"), std::string::npos) << size.output;
  EXPECT_EQ(run_fswap(base + " --face-detector-angles 45").code, 2);
  EXPECT_EQ(run_fswap(base + " --face-detector-margin 10 0 0").code, 2);  // four values
  const auto upright = run_fswap(base + " --face-detector-margin 10 0 0 0");  // fr_detect, the default
  EXPECT_EQ(upright.code, 2) << upright.output;
  EXPECT_NE(upright.output.find("FaceFusion's detectors"), std::string::npos) << upright.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliBadInput, MissingTarget) {
  const std::string out = scratch("bad_missing.mp4");
  expect_rejected("swap -s " + kMedia + "astronaut.png -t /nonexistent/clip.mp4 -o " + out, out, "/nonexistent/clip.mp4");
}

TEST(CliBadInput, TextFileAsVideo) {
  const std::string text = scratch("notes.mp4");
  std::ofstream(text) << "this is not a video\n";
  const std::string out = scratch("bad_text.mp4");
  expect_rejected("swap -s " + kMedia + "astronaut.png -t " + text + " -o " + out, out, text);
}

TEST(CliBadInput, TruncatedMp4) {
  const std::string input = kMedia + "messi_720p.mp4";
  const std::string cut = scratch("truncated.mp4");
  {
    std::string bytes(fs::file_size(input), '\0');
    std::ifstream(input, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 3));
  }
  const std::string out = scratch("bad_truncated.mp4");
  // An MP4 cut before its index (moov at the end) cannot be read: rejected, nothing written.
  // One whose index survived decodes the frames that are there; either way no broken output.
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + cut + " -o " + out);
  if (r.code == 0) {
    auto reader = VideoReader::open(out);
    ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  } else {
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(cut), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST(CliBadInput, SourceWithoutAFace) {
  const std::string blank = scratch("blank.png");
  Image gradient(320, 240, 3);
  for (int y = 0; y < 240; ++y)
    for (int x = 0; x < 320; ++x) gradient.at(x, y, 0) = gradient.at(x, y, 1) = gradient.at(x, y, 2) = x * 255 / 319;
  ASSERT_TRUE(write_image(blank, gradient).is_ok());
  const std::string out = scratch("bad_noface.mp4");
  expect_rejected("swap -s " + blank + " -t " + kMedia + "messi_720p.mp4 -o " + out, out, blank);
}

TEST(CliBadInput, OutputDirectoryMissing) {
  const std::string out = "/nonexistent-dir/out.mp4";
  expect_rejected("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi_720p.mp4 -o " + out, out, "/nonexistent-dir");
}

TEST(CliBadInput, OutputEqualsInput) {
  const std::string jpg = scratch("target_copy.jpg");
  fs::copy_file(kMedia + "messi5.jpg", jpg, fs::copy_options::overwrite_existing);
  const auto size = fs::file_size(jpg);
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + jpg + " -o " + jpg);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(jpg), std::string::npos) << r.output;
  EXPECT_EQ(fs::file_size(jpg), size) << "the input was modified";
}

// --precision, --vram-budget, --memory-mode: checked before any work, then carried into every
// session the job loads.
TEST(CliSessionFlags, Fp16OnTheCpuIsRejected) {
  const std::string out = scratch("fp16_cpu.png");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                           " --precision fp16 --device cpu");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("fp16"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CPU"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliSessionFlags, BadVramBudgetOnCudaIsRejected) {
  const std::string out = scratch("banana.png");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                           " --device cuda --engine native --vram-budget banana");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(r.output.find("--vram-budget \"banana\"") != std::string::npos ||
              r.output.find("no CUDA backend") != std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(out));
}

// `fswap serve` takes the same flags for every job it runs, and checks them before it listens.
TEST(CliSessionFlags, ServeChecksTheFlagsBeforeListening) {
  const std::string data = scratch("serve_flags");
  const auto bad = run_fswap("serve --data-dir " + data + " --port 0 --vram-budget banana");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--vram-budget \"banana\""), std::string::npos) << bad.output;
  const auto fp16 = run_fswap("serve --data-dir " + data + " --port 0 --precision fp16 --device cpu");
  EXPECT_EQ(fp16.code, 2) << fp16.output;
  EXPECT_NE(fp16.output.find("fp16"), std::string::npos) << fp16.output;
}

TEST(CliSessionFlags, PrecisionReachesTheEngine) {
  // ONNX Runtime refuses fp16 when it loads the first model: proof that the flag got there.
  const std::string out = scratch("fp16_ort.png");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                           " --device cuda --engine ort --precision fp16");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("fr_detect.onnx: --precision fp16"), std::string::npos) << r.output;
}

TEST(CliSessionFlags, CpuRunAcceptsTheFlags) {
  const std::string out = scratch("flags_cpu.png");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                           " --engine native --precision fp32 --vram-budget 50% --memory-mode explicit --frames-on-gpu off"
                           " --gpu-lanes 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 faces swapped"), std::string::npos) << r.output;
  const auto bad = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                             " --frames-on-gpu maybe");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--frames-on-gpu"), std::string::npos) << bad.output;
  const auto lanes = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                               " --gpu-lanes 3");
  EXPECT_EQ(lanes.code, 2) << lanes.output;
  EXPECT_NE(lanes.output.find("--gpu-lanes"), std::string::npos) << lanes.output;
  // The CPU keeps no device-memory statistics, so the summary has none.
  EXPECT_EQ(r.output.find("device arena"), std::string::npos) << r.output;
}

// fswap bench: the decode+encode ceiling, the swap and the re-encode of the swap's output, each
// with its whole-run fps, the steady fps from frame 30 on and the seconds to the first frame (the
// columns docs/BENCHMARKS.md reports), and the stage times from frame 30 on: the models' loading,
// before the first frame, is not in them. Then the swap's share of both ceilings.
TEST(CliBench, PrintsTheCeilingsAndTheSwapWithASteadyFps) {
  const auto r = run_fswap("bench -s " + kMedia + "astronaut.png -t " + kMedia + "messi_720p.mp4 --trim-frame-end 45");
  ASSERT_EQ(r.code, 0) << r.output;
  int rows = 0;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string target, mode, steady;
    long long frames = 0;
    double fps = 0, first = 0;
    if (!(fields >> target >> mode) || target != "messi_720p.mp4" ||
        (mode != "dec+enc" && mode != "swap" && mode != "re-encode"))
      continue;
    ASSERT_TRUE(fields >> frames >> fps >> steady >> first) << line;
    EXPECT_EQ(frames, 45) << line;
    EXPECT_GT(fps, 0) << line;
    ASSERT_NE(steady, "-") << line;  // no steady figure
    EXPECT_GT(std::stod(steady), 0) << line;
    EXPECT_GT(first, 0) << line;
    EXPECT_LT(first, 45 / fps) << line;  // the first frame comes before the whole run is over
    if (mode == "swap") {
      EXPECT_NE(line.find(" load=0.00 "), std::string::npos) << line;
      EXPECT_NE(line.find(" detect="), std::string::npos) << line;
    }
    ++rows;
  }
  EXPECT_EQ(rows, 3) << r.output;
  EXPECT_NE(r.output.find("messi_720p.mp4               steady swap: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("% of dec+enc, "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("% of re-encode\n"), std::string::npos) << r.output;
}

// fswap bench --rounds N: the three rows and the round's shares N times in turn, then the median
// shares; --rounds 0 is a usage error.
TEST(CliBench, RoundsRepeatTheRowsAndEndWithTheMedianShares) {
  const std::string args = "bench -s " + kMedia + "astronaut.png -t " + kMedia + "messi_720p.mp4 --trim-frame-end 40";
  const auto r = run_fswap(args + " --rounds 2");
  ASSERT_EQ(r.code, 0) << r.output;
  std::map<std::string, int> rows;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string target, mode;
    if (fields >> target >> mode && target == "messi_720p.mp4") ++rows[mode];
  }
  EXPECT_EQ(rows["dec+enc"], 2) << r.output;
  EXPECT_EQ(rows["swap"], 2) << r.output;
  EXPECT_EQ(rows["re-encode"], 2) << r.output;
  EXPECT_EQ(rows["steady"], 2) << r.output;  // "steady swap: ..." once a round
  EXPECT_EQ(rows["median"], 1) << r.output;
  EXPECT_NE(r.output.find("median of 2 rounds: "), std::string::npos) << r.output;
  const auto zero = run_fswap(args + " --rounds 0");
  EXPECT_EQ(zero.code, 2) << zero.output;
  EXPECT_NE(zero.output.find("--rounds"), std::string::npos) << zero.output;
}

TEST(CliUsage, HelpVersionAndUnknownOption) {
  EXPECT_EQ(run_fswap("--help").code, 0);
  const auto v = run_fswap("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.output.find("fswap"), std::string::npos);
  EXPECT_EQ(run_fswap("swap --no-such-option").code, 2);
  EXPECT_EQ(run_fswap("").code, 2);
  const auto info = run_fswap("info");
  EXPECT_EQ(info.code, 0) << info.output;
  EXPECT_NE(info.output.find("fr_detect.onnx"), std::string::npos);
}

// FaceFusion's inswapper_128 through the CLI, on replicas (random weights: the face becomes
// noise, so this checks the plumbing: models found, face pasted back only around the face).
TEST(CliFaceFusion, Inswapper128ReplicaSwapsOnlyTheFaceRegion) {
  std::string why;
  const std::string replicas = test::replica_dir(&why);
  if (replicas.empty()) GTEST_SKIP() << why;
  const fs::path models = fs::path(scratch("models"));
  fs::create_directories(models);
  for (const auto& e : fs::directory_iterator(kModels)) fs::create_symlink(e.path(), models / e.path().filename());
  for (const char* f : {"inswapper_128.onnx", "arcface_w600k_r50.onnx"})
    fs::create_symlink(fs::path(replicas) / f, models / f);
  const std::string out = scratch("inswapper.png");
  const auto r = run_fswap("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                           " --face-swapper-model inswapper_128 --models-dir " + models.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const Image before = read_image(kMedia + "messi5.jpg").value();
  const Image after = read_image(out).value();
  const auto faces = Analysis::get().faces(before);
  ASSERT_FALSE(faces.empty());
  // The pasted crop covers the arcface_128 box around the face: about twice the detector box.
  EXPECT_GE(psnr_outside(before, after, {faces[0].box}, 1.0f), 35.0);
  EXPECT_LT(psnr_outside(before, after, {}, 0.f), 35.0) << "nothing was pasted";
}

TEST(CliFaceFusion, MissingModelFileIsNamed) {
  const std::string out = scratch("no_model.png");
  expect_rejected("swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg -o " + out +
                      " --face-swapper-model inswapper_128 --models-dir " + kModels,
                  out, "inswapper_128.onnx");
}

// FaceFusion's face_enhancer through the CLI. A models folder: the default models, plus
// `enhancer` linked as gfpgan_1.4.onnx (the gfpgan_1.4 replica, or the identity probe where the
// model's output does not matter: it is cheap on two cores).
fs::path enhancer_models(const std::string& name, const fs::path& enhancer) {
  const fs::path models = fs::path(scratch(name));
  fs::create_directories(models);
  for (const auto& e : fs::directory_iterator(kModels)) fs::create_symlink(e.path(), models / e.path().filename());
  fs::create_symlink(enhancer, models / "gfpgan_1.4.onnx");
  return models;
}

// PSNR over the whole image.
double psnr_whole(const Image& a, const Image& b) {
  double se = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = double(a.pixels[i]) - b.pixels[i];
    se += d * d;
  }
  if (a.pixels.empty() || se == 0) return 99;
  return 10 * std::log10(255.0 * 255.0 / (se / a.pixels.size()));
}

std::string astronaut_swap_args(const std::string& out) {
  return "swap -s " + kMedia + "astronaut.png -t " + kMedia + "astronaut.png -o " + out;
}

TEST(CliFaceFusion, FaceEnhancerGfpgan14ReplicaRunsAfterTheSwapper) {
  std::string why;
  const std::string replicas = test::enhancer_replica_dir(&why);
  if (replicas.empty()) GTEST_SKIP() << why;
  const fs::path models = enhancer_models("models_gfpgan", fs::path(replicas) / "gfpgan_1.4.onnx");
  const std::string swapped = scratch("astronaut_swapped.png"), enhanced = scratch("astronaut_enhanced.png");
  ASSERT_EQ(run_fswap(astronaut_swap_args(swapped) + " --models-dir " + models.string()).code, 0);
  const auto r = run_fswap(astronaut_swap_args(enhanced) + " --processors face_swapper face_enhancer" +
                           " --face-enhancer-model gfpgan_1.4 --models-dir " + models.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const Image before = read_image(swapped).value();
  const Image after = read_image(enhanced).value();
  ASSERT_EQ(after.width, before.width);
  ASSERT_EQ(after.height, before.height);
  const auto faces = Analysis::get().faces(read_image(kMedia + "astronaut.png").value());
  ASSERT_FALSE(faces.empty());
  // The ffhq_512 crop reaches about one face box beyond the detector box on each side.
  EXPECT_GE(psnr_outside(before, after, {faces[0].box}, 1.5f), 35.0);
  EXPECT_LT(psnr_whole(before, after), 35.0) << "the enhancer changed nothing";
}

TEST(CliFaceFusion, FaceEnhancerBlendZeroLeavesTheSwapUnchanged) {
  std::string why;
  const std::string replicas = test::enhancer_replica_dir(&why);
  if (replicas.empty()) GTEST_SKIP() << why;
  const fs::path models = enhancer_models("models_probe", fs::path(replicas) / "identity_512.onnx");
  const std::string swapped = scratch("blend0_swapped.png"), blended = scratch("blend0_enhanced.png");
  ASSERT_EQ(run_fswap(astronaut_swap_args(swapped) + " --models-dir " + models.string()).code, 0);
  const auto r = run_fswap(astronaut_swap_args(blended) + " --processors face_swapper face_enhancer" +
                           " --face-enhancer-blend 0 --models-dir " + models.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_image(blended).value().pixels, read_image(swapped).value().pixels);
}

TEST(CliFaceFusion, FaceEnhancerAloneNeedsNoSource) {
  std::string why;
  const std::string replicas = test::enhancer_replica_dir(&why);
  if (replicas.empty()) GTEST_SKIP() << why;
  const fs::path models = enhancer_models("models_alone", fs::path(replicas) / "identity_512.onnx");
  const std::string out = scratch("enhanced_only.png");
  const auto r = run_fswap("swap -t " + kMedia + "astronaut.png -o " + out +
                           " --processors face_enhancer --face-enhancer-blend 100 --models-dir " + models.string());
  ASSERT_EQ(r.code, 0) << r.output;
  // The identity probe gives the face back, re-warped: close to the photo, but not equal.
  const Image before = read_image(kMedia + "astronaut.png").value();
  const Image after = read_image(out).value();
  EXPECT_GE(psnr_whole(before, after), 30.0);
  EXPECT_NE(before.pixels, after.pixels);
  // Without face_enhancer, a source is still required.
  expect_rejected("swap -t " + kMedia + "astronaut.png -o " + scratch("no_source.png"), scratch("no_source.png"), "-s");
}

TEST(CliFaceFusion, MissingEnhancerModelFileIsNamed) {
  const std::string out = scratch("no_enhancer.png");
  expect_rejected(astronaut_swap_args(out) + " --processors face_swapper face_enhancer --face-enhancer-model codeformer" +
                      " --models-dir " + kModels,
                  out, "codeformer.onnx");
  expect_rejected(astronaut_swap_args(out) + " --processors face_enhancer --face-enhancer-blend 101", out, "blend");
}

// FaceFusion's --face-selector-gender/-race/-age-*: fairface (the replica) classifies the target's
// faces; a filter that keeps them swaps them, one that drops every face leaves the frame as it
// was (exit 0, "0 faces swapped": what fswap and FaceFusion do with a frame without a face).
TEST(CliFaceSelector, FairfaceFiltersChooseTheFaces) {
  std::string why;
  const std::string replicas = test::generated_replicas("facefusion-classifier-replicas-v1", "fairface", {}, &why);
  if (replicas.empty()) GTEST_SKIP() << why;
  const fs::path models = fs::path(scratch("fairface_models"));
  fs::create_directories(models);
  for (const auto& e : fs::directory_iterator(kModels)) fs::create_symlink(e.path(), models / e.path().filename());
  fs::create_symlink(fs::path(replicas) / "fairface.onnx", models / "fairface.onnx");
  // What the replica says of the photo's faces (the CLI's default analysis models).
  const Image before = read_image(kMedia + "messi5.jpg").value();
  auto engine = make_engine("ort").value();
  AnalyserOptions options;
  options.models_dir = models.string();
  options.classify = true;
  auto analyser = FaceAnalyser::load(*engine, options).value();
  const auto faces = analyser->analyse(before, /*embed=*/false).value();
  ASSERT_FALSE(faces.empty());
  const FaceClasses first = analyser->classify(before, faces[0]).value();
  int same_gender = 0;
  for (const Face& f : faces) same_gender += analyser->classify(before, f).value().gender == first.gender;
  const std::string other = first.gender == "female" ? "male" : "female";
  const std::string args = "swap -s " + kMedia + "astronaut.png -t " + kMedia + "messi5.jpg --face-selector-mode many " +
                           "--models-dir " + models.string();

  const std::string kept = scratch("selector_kept.png");
  auto r = run_fswap(args + " -o " + kept + " --face-selector-gender " + first.gender + " --face-selector-age-start " +
                     std::to_string(first.age_first) + " --face-selector-age-end " + std::to_string(first.age_last));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(std::to_string(same_gender) + " faces swapped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("classify"), std::string::npos) << "fairface's time is in the stage summary: " << r.output;
  EXPECT_NE(read_image(kept).value().pixels, before.pixels);

  const std::string none = scratch("selector_none.png");
  r = run_fswap(args + " -o " + none + " --face-selector-gender " + other);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(" 0 faces swapped"), std::string::npos) << r.output;
  EXPECT_EQ(read_image(none).value().pixels, before.pixels) << "a frame without a chosen face is left as it was";
  // auto: the gender of the largest source face (the astronaut's, by the same replica), so the
  // output is the one of naming that gender.
  const Image source = read_image(kMedia + "astronaut.png").value();
  const auto source_faces = analyser->analyse(source, /*embed=*/false).value();
  ASSERT_FALSE(source_faces.empty());
  const std::string source_gender = analyser->classify(source, source_faces[largest_face(source_faces)]).value().gender;
  const std::string by_auto = scratch("selector_auto.png"), by_name = scratch("selector_named.png");
  r = run_fswap(args + " -o " + by_auto + " --face-selector-gender auto");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_fswap(args + " -o " + by_name + " --face-selector-gender " + source_gender);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_image(by_auto).value().pixels, read_image(by_name).value().pixels)
      << "auto is the source face's gender, " << source_gender;
  // An empty age range (range(50, 50)) keeps no face either.
  const std::string empty_range = scratch("selector_age.png");
  r = run_fswap(args + " -o " + empty_range + " --face-selector-race " + first.race +
                " --face-selector-age-start 50 --face-selector-age-end 50");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(" 0 faces swapped"), std::string::npos) << r.output;
}

TEST(CliFaceSelector, MissingFairfaceAndBadValuesAreNamed) {
  const std::string out = scratch("no_fairface.png");
  expect_rejected(astronaut_swap_args(out) + " --face-selector-race asian --models-dir " + kModels, out, "fairface.onnx");
  expect_rejected(astronaut_swap_args(out) + " --face-selector-gender other", out, "--face-selector-gender");
  expect_rejected(astronaut_swap_args(out) + " --face-selector-age-start 60 --face-selector-age-end 20", out,
                  "--face-selector-age");
  expect_rejected(astronaut_swap_args(out) + " --face-selector-order front-back", out, "--face-selector-order");
  // No filter: fairface is not needed, loaded or run.
  const auto r = run_fswap(astronaut_swap_args(out) + " --face-selector-order left-right --models-dir " + kModels);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("classify"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fswap
