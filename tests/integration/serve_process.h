// Helpers of the black-box `fswap serve` tests: the real binary started on a free loopback
// port (or as a worker) with a scratch data dir, jobs sent and polled over HTTP.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "video/media.h"

namespace fswap::testing_server {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

inline const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline fs::path scratch_root() {
  static const fs::path dir = fs::path(FSWAP_TEST_TMP) / ("server-" + std::to_string(getpid()));
  return dir;
}

// Removes this process's scratch folder when all its tests have run (the ServerLimits tests
// have no fixture of their own to do it).
class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(scratch_root(), ec);
  }
};
inline ::testing::Environment* const kScratchCleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

// One `fswap serve` process; SIGTERM on stop() or destruction. The constructor waits (10 s at
// most) for the line that says it serves (port() > 0) or, with --worker-only, that it works
// (ready()), or for the process to exit (stop() then returns its exit code).
class ServeProcess {
 public:
  ServeProcess(const std::string& data_dir, const std::vector<std::string>& extra = {}) {
    fs::create_directories(scratch_root());
    log_ = (scratch_root() / ("serve-" + std::to_string(++count_) + ".log")).string();
    std::vector<std::string> args = {FSWAP_BINARY, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", data_dir,
                                     "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const std::regex re(R"(serving on http://127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 200 && port_ == 0 && !ready_; ++i) {
      std::smatch m;
      const std::string text = read_file(log_);
      if (std::regex_search(text, m, re)) port_ = std::stoi(m[1]);
      else if (text.find("fswap: worker taking jobs from") != std::string::npos) ready_ = true;
      else if (int status = 0; waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = -1;
        break;
      } else std::this_thread::sleep_for(50ms);
    }
    ready_ = ready_ || port_ > 0;
  }
  ~ServeProcess() { stop(); }
  int port() const { return port_; }
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_file(log_); }
  httplib::Client client(const std::string& token = "") const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    if (!token.empty()) c.set_bearer_token_auth(token);
    return c;
  }
  // SIGKILL: no shutdown path runs (a crash, an OOM kill).
  void kill9() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGTERM, then the exit code (-1 when it did not exit within 15 s).
  int stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = -1;
        return exit_code_;
      }
      std::this_thread::sleep_for(50ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

 private:
  static inline int count_ = 0;
  pid_t pid_ = -1;
  int port_ = 0;
  bool ready_ = false;
  int exit_code_ = -1;
  std::string log_;
};

inline httplib::MultipartFormData file_part(const std::string& field, const std::string& path, const std::string& name = "x") {
  return {field, read_file(path), name, "application/octet-stream"};
}

inline httplib::MultipartFormData options_part(const std::string& json_text) {
  return {"options", json_text, "", "application/json"};
}

inline std::string error_code(const httplib::Result& r) {
  if (!r) return "<no response>";
  const auto j = json::parse(r->body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "<not a JSON error: " + r->body + ">";
}

inline json wait_for_job(httplib::Client& c, const std::string& id, std::chrono::seconds limit = 30s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  json job;
  while (std::chrono::steady_clock::now() < until) {
    auto r = c.Get(("/v1/jobs/" + id).c_str());
    if (!r || r->status != 200) return {};
    job = json::parse(r->body);
    const std::string state = job["state"];
    if (state == "done" || state == "failed" || state == "cancelled") return job;
    std::this_thread::sleep_for(100ms);
  }
  return job;
}

// Polls job id until it is running with at least min_frames done (or has left the queue another
// way: finished, failed), at most `limit`; returns its last state (a kill test checks "running").
inline json wait_until_running(httplib::Client& c, const std::string& id, int min_frames,
                               std::chrono::seconds limit = 30s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  json job;
  while (std::chrono::steady_clock::now() < until) {
    job = json::parse(c.Get(("/v1/jobs/" + id).c_str())->body);
    if (job["state"] != "queued" && (job["state"] != "running" || job["progress"]["frames_done"].get<int>() >= min_frames))
      break;
    std::this_thread::sleep_for(10ms);
  }
  return job;
}

// Frames in a video file (-1 when it does not decode to the end).
inline int count_video_frames(const std::string& path) {
  auto reader = VideoReader::open(path);
  if (!reader) return -1;
  int frames = 0;
  VideoFrame frame;
  while (true) {
    auto got = (*reader)->read(frame);
    if (!got) return -1;
    if (!*got) break;
    ++frames;
  }
  return frames;
}

}  // namespace fswap::testing_server
