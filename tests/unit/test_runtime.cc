// The runtime layer: device parsing, engine selection and the ONNX Runtime engine on the
// face-recognition models that scripts/setup.sh puts in third_party/models.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/ort_engine.h"

namespace fswap {
namespace {

namespace fs = std::filesystem;

std::string model_path(const std::string& name) {
  return std::string(FSWAP_THIRD_PARTY_DIR) + "/models/" + name + ".onnx";
}

std::string tmp_dir() {
  fs::path dir = fs::path(FSWAP_TEST_TMP) / "runtime";
  fs::create_directories(dir);
  return dir.string();
}

std::unique_ptr<InferenceSession> load_or_die(const std::string& name, int threads = 2) {
  OrtEngine engine;
  auto session = engine.load(model_path(name), {.device = {}, .threads = threads});
  EXPECT_TRUE(session.is_ok()) << session.status().to_string();
  return session.is_ok() ? std::move(session).value() : nullptr;
}

Tensor random_tensor(const Shape& shape, unsigned seed) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.elements(); ++i) p[i] = dist(rng);
  return t;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// --- parse_device -------------------------------------------------------------------------

TEST(ParseDevice, AcceptsCpuCudaAndCudaIndex) {
  auto cpu = parse_device("cpu");
  ASSERT_TRUE(cpu.is_ok());
  EXPECT_EQ(cpu->kind, DeviceKind::kCpu);
  EXPECT_EQ(cpu->to_string(), "cpu");

  auto cuda = parse_device("cuda");
  ASSERT_TRUE(cuda.is_ok());
  EXPECT_EQ(cuda->kind, DeviceKind::kCuda);
  EXPECT_EQ(cuda->index, 0);
  EXPECT_EQ(cuda->to_string(), "cuda:0");

  auto cuda3 = parse_device("cuda:3");
  ASSERT_TRUE(cuda3.is_ok());
  EXPECT_EQ(cuda3->kind, DeviceKind::kCuda);
  EXPECT_EQ(cuda3->index, 3);
  EXPECT_EQ(cuda3->to_string(), "cuda:3");
}

TEST(ParseDevice, RejectsOtherTextNamingIt) {
  for (const std::string text : {"", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:1x", "cuda:x", "cpu:0", " cpu"}) {
    auto device = parse_device(text);
    ASSERT_FALSE(device.is_ok()) << "'" << text << "'";
    EXPECT_EQ(device.status().code(), StatusCode::kInvalidInput);
    EXPECT_TRUE(contains(device.status().message(), "'" + text + "'")) << device.status().message();
  }
}

// --- make_engine --------------------------------------------------------------------------

TEST(MakeEngine, OrtAndAutoGiveTheOrtEngine) {
  for (const std::string name : {"ort", "auto"}) {
    auto engine = make_engine(name);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    EXPECT_EQ((*engine)->name(), "ort");
  }
}

TEST(MakeEngine, NativeIsTheOwnEngine) {
  auto engine = make_engine("native");
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  EXPECT_EQ((*engine)->name(), "native");
}

TEST(MakeEngine, UnknownNameListsTheValidOnes) {
  auto engine = make_engine("tensorflow");
  ASSERT_FALSE(engine.is_ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidInput);
  const std::string& m = engine.status().message();
  EXPECT_TRUE(contains(m, "tensorflow") && contains(m, "auto") && contains(m, "native") && contains(m, "ort")) << m;
}

TEST(OrtEngine, AvailableDevicesStartWithCpu) {
  OrtEngine engine;
  auto devices = engine.available_devices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices.front(), "cpu");
  for (const auto& d : devices) EXPECT_TRUE(d == "cpu" || d == "cuda") << d;
  bool cuda_listed = std::find(devices.begin(), devices.end(), "cuda") != devices.end();
  if (!fs::exists(ort_library_dir() + "/libonnxruntime_providers_cuda.so")) {
    EXPECT_FALSE(cuda_listed);
  }
}

// --- model introspection ------------------------------------------------------------------

TEST(OrtEngine, DescribesTheFaceRecognitionModels) {
  struct Expected {
    std::string model, input, output;
    Shape input_shape;
    std::vector<Shape> output_shapes;
  };
  const std::vector<Expected> cases = {
      {"fr_detect", "input", "scores", {1, 3, 240, 320}, {{1, 4420, 2}, {1, 4420, 4}}},
      {"fr_landmark", "input", "output", {1, 1, 64, 64}, {{1, 136}}},
      {"fr_feature", "input", "output", {1, 3, 112, 112}, {{1, 512}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.model);
    auto session = load_or_die(c.model);
    ASSERT_NE(session, nullptr);
    ASSERT_EQ(session->inputs().size(), 1u);
    EXPECT_EQ(session->inputs()[0].name, c.input);
    EXPECT_EQ(session->inputs()[0].dtype, DType::kFloat32);
    EXPECT_EQ(session->inputs()[0].shape, c.input_shape);
    ASSERT_EQ(session->outputs().size(), c.output_shapes.size());
    EXPECT_EQ(session->outputs()[0].name, c.output);
    for (std::size_t i = 0; i < c.output_shapes.size(); ++i) {
      EXPECT_EQ(session->outputs()[i].dtype, DType::kFloat32);
      EXPECT_EQ(session->outputs()[i].shape, c.output_shapes[i]);
    }
    EXPECT_EQ(session->output_index(c.output), 0);
    EXPECT_EQ(session->output_index("no_such_output"), -1);
  }
  auto detect = load_or_die("fr_detect");
  ASSERT_NE(detect, nullptr);
  EXPECT_EQ(detect->outputs()[1].name, "boxes");
  EXPECT_EQ(detect->output_index("boxes"), 1);
}

// --- run ----------------------------------------------------------------------------------

TEST(OrtEngine, DetectorOnZerosGivesScoresThatAreProbabilities) {
  auto session = load_or_die("fr_detect");
  ASSERT_NE(session, nullptr);
  auto outs = session->run({Tensor::zeros(DType::kFloat32, {1, 3, 240, 320})});
  ASSERT_TRUE(outs.is_ok()) << outs.status().to_string();
  ASSERT_EQ(outs->size(), 2u);
  const Tensor& scores = (*outs)[0];
  const Tensor& boxes = (*outs)[1];
  EXPECT_EQ(scores.shape(), (Shape{1, 4420, 2}));
  EXPECT_EQ(boxes.shape(), (Shape{1, 4420, 4}));
  EXPECT_EQ(scores.dtype(), DType::kFloat32);
  const float* s = scores.data<float>();
  for (int row = 0; row < 4420; ++row) {
    ASSERT_NEAR(s[2 * row] + s[2 * row + 1], 1.0f, 1e-4f) << "row " << row;
  }
}

TEST(OrtEngine, RunIsDeterministic) {
  auto session = load_or_die("fr_feature");
  ASSERT_NE(session, nullptr);
  Tensor in = random_tensor({1, 3, 112, 112}, 7);
  auto a = session->run({in});
  auto b = session->run({in});
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ((*a)[0].bytes(), (*b)[0].bytes());
  EXPECT_EQ(std::memcmp((*a)[0].raw(), (*b)[0].raw(), (*a)[0].bytes()), 0);
  // And the input was only borrowed, never written.
  Tensor again = random_tensor({1, 3, 112, 112}, 7);
  EXPECT_EQ(std::memcmp(in.raw(), again.raw(), in.bytes()), 0);
}

TEST(OrtEngine, WrongInputShapeNamesTheInputAndBothShapes) {
  auto session = load_or_die("fr_landmark");
  ASSERT_NE(session, nullptr);
  auto outs = session->run({Tensor::zeros(DType::kFloat32, {1, 1, 32, 64})});
  ASSERT_FALSE(outs.is_ok());
  EXPECT_EQ(outs.status().code(), StatusCode::kInvalidInput);
  const std::string& m = outs.status().message();
  EXPECT_TRUE(contains(m, "'input'") && contains(m, "[1,1,32,64]") && contains(m, "[1,1,64,64]")) << m;
}

TEST(OrtEngine, WrongInputCountOrDtypeIsInvalidInput) {
  auto session = load_or_die("fr_landmark");
  ASSERT_NE(session, nullptr);
  auto none = session->run({});
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidInput);
  auto bytes = session->run({Tensor::zeros(DType::kUInt8, {1, 1, 64, 64})});
  ASSERT_FALSE(bytes.is_ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidInput);
  EXPECT_TRUE(contains(bytes.status().message(), "uint8")) << bytes.status().message();
}

TEST(OrtEngine, NhwcModelRuns) {
  auto session = load_or_die("blazeface_back_256");
  ASSERT_NE(session, nullptr);
  ASSERT_EQ(session->inputs().size(), 1u);
  EXPECT_EQ(session->inputs()[0].name, "input:0");
  Shape shape = session->inputs()[0].shape;
  for (auto& d : shape) d = d < 0 ? 1 : d;
  EXPECT_EQ(shape, (Shape{1, 256, 256, 3}));
  auto outs = session->run({Tensor::zeros(DType::kFloat32, shape)});
  ASSERT_TRUE(outs.is_ok()) << outs.status().to_string();
  EXPECT_EQ(outs->size(), session->outputs().size());
}

// --- load errors --------------------------------------------------------------------------

TEST(OrtEngine, MissingModelIsNotFound) {
  OrtEngine engine;
  const std::string path = tmp_dir() + "/no_such_model.onnx";
  auto session = engine.load(path, {});
  ASSERT_FALSE(session.is_ok());
  EXPECT_EQ(session.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(session.status().message(), path + ": no such file");
}

TEST(OrtEngine, TextFileIsNotAValidModel) {
  const std::string path = tmp_dir() + "/notes.onnx";
  std::ofstream(path) << "this is a text file, not a protobuf\n";
  OrtEngine engine;
  auto session = engine.load(path, {});
  ASSERT_FALSE(session.is_ok());
  EXPECT_EQ(session.status().code(), StatusCode::kInvalidInput);
  EXPECT_TRUE(contains(session.status().message(), path + ": not a valid ONNX model (")) << session.status().message();
}

TEST(OrtEngine, CudaWithoutProviderLibrariesIsUnsupported) {
  if (fs::exists(ort_library_dir() + "/libonnxruntime_providers_cuda.so")) {
    GTEST_SKIP() << "the CUDA provider library is installed here";
  }
  OrtEngine engine;
  auto session = engine.load(model_path("fr_detect"), {.device = {DeviceKind::kCuda, 0}, .threads = 1});
  ASSERT_FALSE(session.is_ok());
  EXPECT_EQ(session.status().code(), StatusCode::kUnsupported);
  const std::string& m = session.status().message();
  EXPECT_TRUE(contains(m, "CUDA")) << m;
  EXPECT_TRUE(contains(m, "libonnxruntime_providers_cuda.so")) << m;
  EXPECT_TRUE(contains(m, "scripts/setup.sh --with-cuda")) << m;
}

TEST(OrtEngine, ThreadsOptionIsHonoured) {
  OrtEngine engine;
  EXPECT_TRUE(engine.load(model_path("fr_landmark"), {.device = {}, .threads = 0}).is_ok());
  for (int threads : {1, 2}) {
    auto session = engine.load(model_path("fr_landmark"), {.device = {}, .threads = threads});
    ASSERT_TRUE(session.is_ok()) << session.status().to_string();
    auto outs = (*session)->run({random_tensor({1, 1, 64, 64}, 3)});
    ASSERT_TRUE(outs.is_ok()) << outs.status().to_string();
    EXPECT_EQ((*outs)[0].shape(), (Shape{1, 136}));
  }
  auto negative = engine.load(model_path("fr_landmark"), {.device = {}, .threads = -1});
  ASSERT_FALSE(negative.is_ok());
  EXPECT_EQ(negative.status().code(), StatusCode::kInvalidInput);
}

TEST(OrtEngine, OneAndTwoThreadsAgree) {
  OrtEngine engine;
  auto one = engine.load(model_path("fr_feature"), {.device = {}, .threads = 1});
  auto two = engine.load(model_path("fr_feature"), {.device = {}, .threads = 2});
  ASSERT_TRUE(one.is_ok() && two.is_ok());
  Tensor in = random_tensor({1, 3, 112, 112}, 11);
  auto a = (*one)->run({in});
  auto b = (*two)->run({in});
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  const float* pa = (*a)[0].data<float>();
  const float* pb = (*b)[0].data<float>();
  for (int i = 0; i < 512; ++i) ASSERT_NEAR(pa[i], pb[i], 1e-4f * (1.0f + std::fabs(pa[i]))) << i;
}

// Median latency with 2 threads; set FSWAP_RUNTIME_BENCH=1 to print it (skipped otherwise).
TEST(OrtEngine, MedianLatencyWithTwoThreads) {
  if (std::getenv("FSWAP_RUNTIME_BENCH") == nullptr) GTEST_SKIP() << "set FSWAP_RUNTIME_BENCH=1";
  for (const std::string name : {"fr_detect", "fr_landmark", "fr_feature"}) {
    auto session = load_or_die(name, 2);
    ASSERT_NE(session, nullptr);
    Tensor in = random_tensor(session->inputs()[0].shape, 5);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(session->run({in}).is_ok());
    std::vector<double> ms;
    for (int i = 0; i < 50; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      ASSERT_TRUE(session->run({in}).is_ok());
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    std::printf("%-12s median %.3f ms (2 threads, 50 runs)\n", name.c_str(), ms[ms.size() / 2]);
  }
}

}  // namespace
}  // namespace fswap
