// The swap pipeline on the sizes and lengths issue 6 names, through the real binary: a 4K clip,
// an odd-sized clip, and a long clip whose memory must stay flat. Clips are made here by
// fswap-make-clip from the sample photo (a face with a slow camera move), one per test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

std::string scratch(const std::string& name) { return test::scratch_path("video_sizes", name); }

int run(const std::string& cmd) {
  const int status = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A clip of the astronaut photo in this test's scratch folder.
std::string make_clip(int width, int height, double seconds, int fps) {
  const std::string out = scratch("astronaut_" + std::to_string(width) + "x" + std::to_string(height) + ".mp4");
  const int code = run(std::string(FSWAP_MAKE_CLIP) + " --image " + kMedia + "astronaut.png --width " +
                       std::to_string(width) + " --height " + std::to_string(height) + " --seconds " +
                       std::to_string(seconds) + " --fps " + std::to_string(fps) + " --crf 18 --preset ultrafast --out " + out);
  EXPECT_EQ(code, 0) << "fswap-make-clip failed for " << out;
  return out;
}

void expect_same_clip_shape(const std::string& input, const std::string& output) {
  const VideoInfo in = VideoReader::open(input).value()->info();
  auto reader = VideoReader::open(output);
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  const VideoInfo out = (*reader)->info();
  EXPECT_EQ(out.width, in.width);
  EXPECT_EQ(out.height, in.height);
  VideoFrame f;
  std::int64_t decoded = 0;
  while ((*reader)->read(f).value()) ++decoded;
  EXPECT_NEAR(static_cast<double>(decoded), static_cast<double>(in.frame_count), 1.0);
  EXPECT_NEAR(out.duration_s, in.duration_s, 1.5 / in.frame_rate.value());
}

int swap(const std::string& input, const std::string& output) {
  return run(std::string(FSWAP_BINARY) + " swap --face-selector-mode one -s " + kMedia + "astronaut.png -t " + input +
             " -o " + output);
}

TEST(VideoSizes, Swaps4KEndToEnd) {
  const std::string input = make_clip(3840, 2160, 1.0, 30);
  const std::string output = scratch("swapped_4k.mp4");
  ASSERT_EQ(swap(input, output), 0);
  expect_same_clip_shape(input, output);
}

TEST(VideoSizes, SwapsAnOddSizedClip) {
  const std::string input = make_clip(1001, 563, 1.0, 30);
  const std::string output = scratch("swapped_odd.mp4");
  ASSERT_EQ(swap(input, output), 0);
  expect_same_clip_shape(input, output);
}

// Resident memory of a process, from /proc (kB), or -1 when it has gone.
long rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = -1;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 12, '\n');
  }
  return -1;
}

// A 20 s clip (600 frames): the resident memory after the first quarter of the run stays within a
// small band, so memory does not grow with the video's length (queues are bounded, frames reused).
TEST(VideoSizes, LongClipKeepsMemoryFlat) {
  const std::string input = make_clip(640, 360, 20.0, 30);
  const std::string output = scratch("swapped_long.mp4");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string source = kMedia + "astronaut.png";
    execl(FSWAP_BINARY, FSWAP_BINARY, "swap", "--log-level", "error", "--face-selector-mode", "one", "-s",
          source.c_str(), "-t", input.c_str(), "-o", output.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::vector<long> samples;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    const long rss = rss_kb(pid);
    if (rss > 0) samples.push_back(rss);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GE(samples.size(), 20u) << "the run was too short to sample";
  const std::size_t settled = samples.size() / 4;
  const long first = *std::max_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(settled) + 1);
  const long peak = *std::max_element(samples.begin() + static_cast<std::ptrdiff_t>(settled), samples.end());
  std::printf("long clip: %zu RSS samples, peak of the first quarter %ld kB, peak after %ld kB\n", samples.size(), first,
              peak);
  EXPECT_LE(peak, first + 32 * 1024) << "resident memory grew by more than 32 MiB after the first quarter";
  expect_same_clip_shape(input, output);
}

}  // namespace
}  // namespace fswap
