// NVDEC decoding (VideoReader with DecodeOptions::kCuda) against the CPU decoder, on the GPU
// machine. H.264 decoding is exact by specification, so NVDEC's NV12 surfaces equal the CPU
// decoder's and, converted by the same swscale step, the RGB frames are identical.
// FSWAP_GPU_CLIPS: the clips to decode, separated by ':' (scripts/gpu_run.sh makes them).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "gpu_env.h"
#include "video/media.h"

namespace fswap {
namespace {

std::vector<std::string> clips() {
  std::vector<std::string> out;
  std::stringstream list(test::gpu_env("FSWAP_GPU_CLIPS"));
  for (std::string path; std::getline(list, path, ':');) {
    if (!path.empty()) out.push_back(path);
  }
  return out;
}

struct Decoded {
  VideoInfo info;
  std::vector<VideoFrame> frames;
  double seconds = 0;
};

Decoded decode_all(const std::string& path, DecodeOptions options) {
  Decoded d;
  const auto start = std::chrono::steady_clock::now();
  auto reader = VideoReader::open(path, options);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (!reader) return d;
  d.info = (*reader)->info();
  while (true) {
    VideoFrame f;
    auto got = (*reader)->read(f);
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (!got || !*got) break;
    d.frames.push_back(std::move(f));
  }
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return d;
}

TEST(NvdecDecoding, FramesEqualTheCpuDecoders) {
  const auto paths = clips();
  ASSERT_FALSE(paths.empty()) << "FSWAP_GPU_CLIPS is not set";
  for (const auto& path : paths) {
    const Decoded cpu = decode_all(path, {});
    const Decoded gpu = decode_all(path, {DecodeOptions::Hw::kCuda, 0});
    EXPECT_TRUE(gpu.info.gpu_decoding) << path << ": NVDEC did not open (see the debug log)";
    ASSERT_FALSE(cpu.frames.empty()) << path;
    ASSERT_EQ(gpu.frames.size(), cpu.frames.size()) << path;
    int differing = 0;
    for (std::size_t i = 0; i < cpu.frames.size(); ++i) {
      EXPECT_EQ(gpu.frames[i].pts, cpu.frames[i].pts) << path << " frame " << i;
      if (gpu.frames[i].image.pixels != cpu.frames[i].image.pixels) ++differing;
    }
    EXPECT_EQ(differing, 0) << path << ": frames that differ from the CPU decoder's";
    // Not a timed assertion: the figures go to the log for docs/BENCHMARKS.md.
    std::printf("video decode %s %dx%d: %zu frames, cpu %.1f fps, nvdec %.1f fps (with host copy and RGB)\n",
                path.c_str(), cpu.info.width, cpu.info.height, cpu.frames.size(), cpu.frames.size() / cpu.seconds,
                gpu.frames.size() / gpu.seconds);
  }
}

}  // namespace
}  // namespace fswap
