// `fswap models list|fetch|verify` driven as a black box: a loopback HTTP server in this
// process serves a replica of arcface_w600k_r50 (with a right or wrong FaceFusion .hash,
// a 404, a body cut short, a redirect) and the real binary downloads from it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/replicas.h"

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// zlib's CRC-32, bit by bit: an independent check of fswap's table version.
std::string crc32_hex(const std::string& data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", ~crc);
  return buf;
}

struct RunResult {
  int rc = -1;
  std::string out;  // stdout and stderr
};

RunResult run_fswap(const std::string& args) {
  RunResult r;
  std::FILE* p = ::popen((std::string(FSWAP_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Files in the models folder, for "nothing left behind" checks.
std::string listing(const fs::path& dir) {
  std::string s;
  if (!fs::exists(dir)) return s;
  for (const auto& e : fs::directory_iterator(dir)) s += e.path().filename().string() + " ";
  return s;
}

class ModelsCommand : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    const std::string dir = fswap::test::replica_dir(&why);
    if (dir.empty()) {
      skip_reason_ = new std::string(why);
      return;
    }
    arcface_ = new std::string(read_file(fs::path(dir) / "arcface_w600k_r50.onnx"));
    detect_ = new std::string(read_file(fs::path(FSWAP_THIRD_PARTY_DIR) / "models/fr_detect.onnx"));
    const std::string classifier =
        fswap::test::generated_replicas("facefusion-classifier-replicas-v1", "fairface", {}, &why);
    if (classifier.empty()) {
      skip_reason_ = new std::string(why);
      return;
    }
    fairface_ = new std::string(read_file(fs::path(classifier) / "fairface.onnx"));
    server_ = new httplib::Server;
    const std::string& body = *arcface_;
    const std::string crc = crc32_hex(body);
    server_->Get("/good/arcface_w600k_r50.onnx", [&body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "application/octet-stream");
    });
    server_->Get("/good/arcface_w600k_r50.hash", [crc](const httplib::Request&, httplib::Response& res) {
      res.set_content(crc + "\n", "text/plain");
    });
    server_->Get("/good/fairface.onnx", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*fairface_, "application/octet-stream");
    });
    server_->Get("/good/fairface.hash", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(crc32_hex(*fairface_), "text/plain");
    });
    server_->Get("/badhash/arcface_w600k_r50.onnx", [&body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "application/octet-stream");
    });
    server_->Get("/badhash/arcface_w600k_r50.hash", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("deadbeef", "text/plain");
    });
    // GitHub release assets answer with a redirect to their storage.
    server_->Get(R"(/redirect/(.*))", [](const httplib::Request& req, httplib::Response& res) {
      res.set_redirect("/good/" + req.matches[1].str());
    });
    // Announces the whole length, sends half, then closes the connection.
    server_->Get("/truncated/arcface_w600k_r50.onnx", [&body](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(body.size(), "application/octet-stream",
                               [&body](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                 if (offset >= body.size() / 2) return false;
                                 sink.write(body.data() + offset, body.size() / 2 - offset);
                                 return true;
                               });
    });
    // fr_detect.onnx served under the arcface name: its inputs differ from the contract.
    server_->Get("/detect/arcface_w600k_r50.onnx", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(*detect_, "application/octet-stream");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = new std::thread([] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  static void TearDownTestSuite() {
    if (server_) {
      server_->stop();
      thread_->join();
    }
  }

  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << *skip_reason_;
    dir_ = fs::path(FSWAP_TEST_TMP) / ("models-command-" + std::to_string(::getpid())) /
           testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string base(const std::string& route) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + route;
  }
  RunResult fetch(const std::string& url_base) const {
    return run_fswap("models fetch arcface_w600k_r50 --models-dir " + dir_.string() + " --url-base " + url_base);
  }
  // A failed fetch leaves no file, partial or whole.
  void expect_nothing_left() const { EXPECT_EQ(listing(dir_), "") << "left in the models folder"; }

  static std::string line_of(const std::string& text, const std::string& name) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(name + " ", 0) == 0) return line;
    return "";
  }

  inline static httplib::Server* server_ = nullptr;
  inline static std::thread* thread_ = nullptr;
  inline static int port_ = 0;
  inline static std::string* arcface_ = nullptr;
  inline static std::string* detect_ = nullptr;
  inline static std::string* fairface_ = nullptr;
  inline static std::string* skip_reason_ = nullptr;
  fs::path dir_;
};

TEST_F(ModelsCommand, ListShowsMissingThenVerifiedAfterFetch) {
  RunResult before = run_fswap("models list --models-dir " + dir_.string());
  ASSERT_EQ(before.rc, 0) << before.out;
  const std::string row = line_of(before.out, "arcface_w600k_r50");
  EXPECT_NE(row.find("missing"), std::string::npos) << before.out;
  EXPECT_NE(row.find("yes"), std::string::npos) << "arcface is supported: " << row;
  EXPECT_NE(line_of(before.out, "inswapper_128").find("non-commercial (insightface)"), std::string::npos);
  for (const char* name : {"inswapper_128_fp16", "hyperswap_1a_256", "simswap_256", "yoloface_8n", "scrfd_2.5g",
                           "retinaface_10g", "2dfan4", "gfpgan_1.4", "codeformer", "real_esrgan_x4", "xseg_1",
                           "bisenet_resnet_34", "fr_detect"})
    EXPECT_NE(line_of(before.out, name), "") << name << " not listed";
  // No published hash for FaceFusion's files (the reference gives none): unverified; fswap's
  // own defaults are pinned.
  EXPECT_NE(row.find(" unverified "), std::string::npos) << row;
  EXPECT_NE(line_of(before.out, "fr_detect").find(" pinned "), std::string::npos) << before.out;

  RunResult f = fetch(base("good"));
  ASSERT_EQ(f.rc, 0) << f.out;
  EXPECT_NE(f.out.find("could not verify against"), std::string::npos) << "no pinned sha256: " << f.out;
  EXPECT_EQ(read_file(dir_ / "arcface_w600k_r50.onnx"), *arcface_);
  EXPECT_TRUE(fs::exists(dir_ / "arcface_w600k_r50.onnx.sha256"));

  RunResult after = run_fswap("models list --models-dir " + dir_.string());
  ASSERT_EQ(after.rc, 0) << after.out;
  EXPECT_NE(line_of(after.out, "arcface_w600k_r50").find("verified"), std::string::npos) << after.out;
  EXPECT_NE(line_of(after.out, "inswapper_128").find("missing"), std::string::npos) << after.out;

  RunResult v = run_fswap("models verify --models-dir " + dir_.string());
  EXPECT_EQ(v.rc, 0) << v.out;
  EXPECT_NE(line_of(v.out, "arcface_w600k_r50").find("verified"), std::string::npos) << v.out;
}

TEST_F(ModelsCommand, FollowsRedirects) {
  RunResult f = fetch(base("redirect"));
  ASSERT_EQ(f.rc, 0) << f.out;
  EXPECT_EQ(read_file(dir_ / "arcface_w600k_r50.onnx"), *arcface_);
}

TEST_F(ModelsCommand, WrongHashFailsAndLeavesNothing) {
  RunResult f = fetch(base("badhash"));
  EXPECT_EQ(f.rc, 2) << f.out;
  EXPECT_NE(f.out.find(base("badhash") + "/arcface_w600k_r50.onnx"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("hash"), std::string::npos) << f.out;
  expect_nothing_left();
}

TEST_F(ModelsCommand, NotFoundFailsAndLeavesNothing) {
  RunResult f = fetch(base("nowhere"));
  EXPECT_EQ(f.rc, 2) << f.out;
  EXPECT_NE(f.out.find("404"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find(base("nowhere")), std::string::npos) << f.out;
  expect_nothing_left();
}

TEST_F(ModelsCommand, TruncatedBodyFailsAndLeavesNothing) {
  RunResult f = fetch(base("truncated"));
  EXPECT_EQ(f.rc, 2) << f.out;
  EXPECT_NE(f.out.find(base("truncated") + "/arcface_w600k_r50.onnx"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("truncated"), std::string::npos) << f.out;
  expect_nothing_left();
}

TEST_F(ModelsCommand, ConnectionRefused) {
  // A bound socket that never listens: connections to it are refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  RunResult f = fetch(url);
  ::close(fd);
  EXPECT_EQ(f.rc, 2) << f.out;
  EXPECT_NE(f.out.find(url), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("cannot connect"), std::string::npos) << f.out;
  expect_nothing_left();
}

TEST_F(ModelsCommand, UnknownModelIsAUserError) {
  RunResult f = run_fswap("models fetch no_such_model --models-dir " + dir_.string() + " --url-base " + base("good"));
  EXPECT_EQ(f.rc, 2) << f.out;
  EXPECT_NE(f.out.find("no_such_model"), std::string::npos) << f.out;
  RunResult v = run_fswap("models verify no_such_model --models-dir " + dir_.string());
  EXPECT_EQ(v.rc, 2) << v.out;
}

TEST_F(ModelsCommand, VerifyOfAMissingNamedModelIsAUserError) {
  RunResult v = run_fswap("models verify arcface_w600k_r50 --models-dir " + dir_.string());
  EXPECT_EQ(v.rc, 2) << v.out;
  EXPECT_NE(v.out.find("missing"), std::string::npos) << v.out;
}

TEST_F(ModelsCommand, ContractMismatchIsReportedNamingTheInput) {
  // Fetching it fails on the contract and leaves nothing.
  RunResult f = fetch(base("detect"));
  EXPECT_EQ(f.rc, 2) << f.out;
  EXPECT_NE(f.out.find("input 'input'"), std::string::npos) << f.out;
  expect_nothing_left();

  // Placed by hand, verify reports it mismatched, naming the input and its shapes.
  fs::copy_file(fs::path(FSWAP_THIRD_PARTY_DIR) / "models/fr_detect.onnx", dir_ / "arcface_w600k_r50.onnx");
  RunResult v = run_fswap("models verify arcface_w600k_r50 --models-dir " + dir_.string());
  EXPECT_EQ(v.rc, 2) << v.out;
  const std::string row = line_of(v.out, "arcface_w600k_r50");
  EXPECT_NE(row.find("mismatched"), std::string::npos) << v.out;
  EXPECT_NE(row.find("input 'input' has shape [1,3,240,320]"), std::string::npos) << v.out;
  RunResult l = run_fswap("models list --models-dir " + dir_.string());
  EXPECT_NE(line_of(l.out, "arcface_w600k_r50").find("mismatched"), std::string::npos) << l.out;
}

// Every model fswap runs is in the catalogue, with its licence and source: FaceFusion's
// detectors, landmarkers, fairface, swappers and their converters, enhancers, occluders,
// parsers and frame enhancers (the names are checked against fswap's model tables by
// ModelCatalogue.* in tests/unit/test_model_catalogue.cc).
TEST_F(ModelsCommand, ListShowsEveryFamily) {
  RunResult list = run_fswap("models list --models-dir " + dir_.string());
  ASSERT_EQ(list.rc, 0) << list.out;
  for (const char* name :
       {"yoloface_8n", "scrfd_2.5g", "retinaface_10g", "2dfan4", "peppa_wutz", "fan_68_5", "fairface", "inswapper_128",
        "hyperswap_1b_256", "hyperswap_1c_256", "simswap_unofficial_512", "ghost_1_256", "ghost_2_256", "ghost_3_256",
        "hififace_unofficial_256", "blendswap_256", "uniface_256", "crossface_simswap", "crossface_ghost",
        "crossface_hififace", "gfpgan_1.2", "gfpgan_1.3", "gpen_bfr_256", "gpen_bfr_2048", "restoreformer_plus_plus",
        "xseg_2", "xseg_3", "bisenet_resnet_18", "real_esrgan_x2", "real_esrgan_x2_fp16", "real_esrgan_x4_fp16",
        "real_esrgan_x8", "real_esrgan_x8_fp16"}) {
    const std::string row = line_of(list.out, name);
    ASSERT_NE(row, "") << name << " not listed:\n" << list.out;
    EXPECT_NE(row.find(" missing "), std::string::npos) << row;
    EXPECT_NE(row.find(" unverified "), std::string::npos) << row;
    EXPECT_NE(row.find(" yes "), std::string::npos) << "supported: " << row;
    EXPECT_NE(row.find("facefusion-assets"), std::string::npos) << row;
  }
  EXPECT_NE(line_of(list.out, "ghost_1_256").find("Apache-2.0"), std::string::npos);
}

// A catalogue entry added with the selector's filters: fetched from the loopback server (the
// replica, FaceFusion's CRC32 .hash), its contract holds, and it lists as verified.
TEST_F(ModelsCommand, FetchesFairface) {
  RunResult f = run_fswap("models fetch fairface --models-dir " + dir_.string() + " --url-base " + base("good"));
  ASSERT_EQ(f.rc, 0) << f.out;
  EXPECT_EQ(read_file(dir_ / "fairface.onnx"), *fairface_);
  RunResult v = run_fswap("models verify fairface --models-dir " + dir_.string());
  EXPECT_EQ(v.rc, 0) << v.out;
  RunResult l = run_fswap("models list --models-dir " + dir_.string());
  const std::string row = line_of(l.out, "fairface");
  EXPECT_NE(row.find(" verified "), std::string::npos) << l.out;
  EXPECT_NE(row.find(" unverified "), std::string::npos) << "the hash column still says nothing was published: " << row;
}

}  // namespace
