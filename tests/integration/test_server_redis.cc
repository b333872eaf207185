// `fswap serve` scaled out: one HTTP front end (--no-worker) and two --worker-only processes
// share a data dir and a Redis stream, on a redis-server of the test's own (free port, no
// persistence). One worker is killed mid-job; the other takes the job over and nothing is
// lost or done twice. Skipped where Debian's redis-server is not installed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <map>
#include <set>

#include "integration/serve_process.h"

namespace fswap {
namespace {

using namespace testing_server;

constexpr const char* kRedisServer = "/usr/bin/redis-server";
constexpr const char* kRedisCli = "/usr/bin/redis-cli";

// A loopback port nobody listens on right now.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool accepts_connections(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// redis-server on a free loopback port, nothing saved; stopped (and reaped) on destruction.
class RedisProcess {
 public:
  RedisProcess() : port_(free_port()) {
    const std::string port = std::to_string(port_);
    const std::string log = (scratch_root() / "redis.log").string();
    fs::create_directories(scratch_root());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(kRedisServer, "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", scratch_root().c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && !accepts_connections(port_); ++i) std::this_thread::sleep_for(50ms);
  }
  ~RedisProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }
  // One redis-cli command's output ("" without redis-cli).
  std::string cli(const std::string& args) const {
    std::string out;
    if (FILE* p = popen((std::string(kRedisCli) + " -p " + std::to_string(port_) + " " + args).c_str(), "r")) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      pclose(p);
    }
    return out;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ServerRedis, KilledWorkersJobIsTakenOverAndEveryJobIsDoneOnce) {
  if (!fs::exists(kRedisServer)) GTEST_SKIP() << kRedisServer << " is missing (Debian's redis-server; scripts/setup.sh --tests)";
  RedisProcess redis;
  ASSERT_TRUE(accepts_connections(redis.port()));
  const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port()) + "/fswap-test";
  const std::string data_dir = (scratch_root() / "scale-out").string();
  ServeProcess front(data_dir, {"--queue", url, "--no-worker"});
  ASSERT_GT(front.port(), 0) << front.log();
  std::vector<std::unique_ptr<ServeProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<ServeProcess>(data_dir, std::vector<std::string>{"--worker-only", "--queue", url,
                                                                                        "--claim-timeout", "2"}));
    ASSERT_TRUE(workers.back()->ready()) << workers.back()->log();
  }

  // A video long enough to be caught running, then small image jobs.
  auto c = front.client();
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                             file_part("target", kMedia + "messi_720p.mp4"),
                                                             options_part(R"({"trim_frame_end": 60})")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string video = json::parse(r->body)["id"];
  std::vector<std::string> images;
  for (int i = 0; i < 4; ++i) {
    auto ri = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                                file_part("target", kMedia + "messi5.jpg")});
    ASSERT_TRUE(ri);
    ASSERT_EQ(ri->status, 201) << ri->body;
    images.push_back(json::parse(ri->body)["id"]);
  }

  // Kill -9 the worker running the video as soon as it has made a frame.
  const json job = wait_until_running(c, video, 1);
  ASSERT_EQ(job["state"], "running") << job.dump();
  ASSERT_LT(job["progress"]["frames_done"].get<int>(), 60) << "the job finished before the kill";
  const std::string started = "serve: job " + video + " started";
  const int victim = workers[0]->log().find(started) != std::string::npos ? 0 : 1;
  ASSERT_NE(workers[victim]->log().find(started), std::string::npos) << workers[0]->log() << workers[1]->log();
  workers[victim]->kill9();
  const std::string killed_log = workers[victim]->log();
  ServeProcess& survivor = *workers[1 - victim];

  std::vector<std::string> ids = images;
  ids.push_back(video);
  for (const auto& id : ids) {
    const json done = wait_for_job(c, id, 90s);
    ASSERT_EQ(done.value("state", ""), "done") << id << done.dump() << survivor.log();
  }
  // The survivor took the video over and finished it; it was done exactly once, like every job.
  const std::string survivor_log = survivor.log();
  EXPECT_NE(survivor_log.find("serve: job " + video + " taken over"), std::string::npos) << survivor_log;
  for (const auto& id : ids)
    EXPECT_EQ(count(killed_log + survivor_log, "serve: job " + id + " done"), 1u) << id << killed_log << survivor_log;
  EXPECT_EQ(count(survivor_log, "serve: job " + video + " done"), 1u);

  // Results are whole: 60 frames of video, JPEG images; the listing has each job once.
  auto res = c.Get(("/v1/jobs/" + video + "/result").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string out = (scratch_root() / "taken_over.mp4").string();
  std::ofstream(out, std::ios::binary) << res->body;
  EXPECT_NEAR(count_video_frames(out), 60, 1);
  for (const auto& id : images) {
    auto ri = c.Get(("/v1/jobs/" + id + "/result").c_str());
    ASSERT_TRUE(ri);
    EXPECT_EQ(ri->status, 200) << id;
    EXPECT_EQ(ri->body.substr(0, 3), "\xff\xd8\xff") << id;
  }
  const json jobs = json::parse(c.Get("/v1/jobs")->body)["jobs"];
  std::multiset<std::string> listed;
  for (const auto& j : jobs) listed.insert(j["id"].get<std::string>());
  EXPECT_EQ(listed, std::multiset<std::string>(ids.begin(), ids.end()));
  // Nothing is left pending in the consumer group.
  if (fs::exists(kRedisCli)) {
    EXPECT_EQ(redis.cli("XPENDING fswap-test fswap-workers").substr(0, 2), "0\n");
  }
  EXPECT_EQ(survivor.stop(), 0) << survivor.log();
  EXPECT_EQ(front.stop(), 0) << front.log();
}

// Redis loses its data (FLUSHALL; a restart without persistence is the same) while one job is
// running under a worker that was just killed and two wait: the front end publishes the three
// again and a worker started afterwards runs each of them once.
TEST(ServerRedis, JobsRedisLostArePublishedAgain) {
  if (!fs::exists(kRedisServer) || !fs::exists(kRedisCli))
    GTEST_SKIP() << kRedisServer << " or " << kRedisCli << " is missing (Debian's redis-server; scripts/setup.sh --tests)";
  RedisProcess redis;
  ASSERT_TRUE(accepts_connections(redis.port()));
  const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port()) + "/fswap-flushed";
  const std::string data_dir = (scratch_root() / "flushed").string();
  const std::vector<std::string> worker_args = {"--worker-only", "--queue", url, "--claim-timeout", "1"};
  ServeProcess front(data_dir, {"--queue", url, "--no-worker", "--claim-timeout", "1"});
  ASSERT_GT(front.port(), 0) << front.log();
  auto doomed = std::make_unique<ServeProcess>(data_dir, worker_args);
  ASSERT_TRUE(doomed->ready()) << doomed->log();

  auto c = front.client();
  auto submit = [&](const std::string& target, const std::string& options) {
    auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                               file_part("target", kMedia + target), options_part(options)});
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
    return r && r->status == 201 ? json::parse(r->body)["id"].get<std::string>() : std::string();
  };
  const std::string video = submit("messi_720p.mp4", R"({"trim_frame_end": 30})");
  const json job = wait_until_running(c, video, 1);
  ASSERT_EQ(job["state"], "running") << job.dump();
  doomed->kill9();
  std::vector<std::string> ids = {video, submit("messi5.jpg", ""), submit("messi5.jpg", "")};

  EXPECT_EQ(redis.cli("FLUSHALL"), "OK\n");
  EXPECT_EQ(redis.cli("XLEN fswap-flushed"), "0\n");
  ServeProcess worker(data_dir, worker_args);
  ASSERT_TRUE(worker.ready()) << worker.log();
  for (const auto& id : ids) {
    const json done = wait_for_job(c, id, 90s);
    EXPECT_EQ(done.value("state", ""), "done") << id << done.dump() << front.log() << worker.log();
  }
  EXPECT_NE(front.log().find("published again"), std::string::npos) << front.log();
  const std::string log = worker.log();
  for (const auto& id : ids) EXPECT_EQ(count(log, "serve: job " + id + " done"), 1u) << id << log;
  EXPECT_EQ(worker.stop(), 0) << worker.log();
  EXPECT_EQ(front.stop(), 0) << front.log();
}

TEST(ServerRedis, BadQueueUrlExitsWithUsageError) {
  const std::string data_dir = (scratch_root() / "bad-url").string();
  ServeProcess not_redis(data_dir, {"--queue", "http://127.0.0.1:6379"});
  EXPECT_EQ(not_redis.stop(), 2) << not_redis.log();
  EXPECT_NE(not_redis.log().find("redis://HOST:PORT"), std::string::npos) << not_redis.log();

  const std::string nobody = "redis://127.0.0.1:" + std::to_string(free_port());
  ServeProcess unreachable(data_dir, {"--worker-only", "--queue", nobody});
  EXPECT_EQ(unreachable.stop(), 2) << unreachable.log();
  EXPECT_NE(unreachable.log().find(nobody), std::string::npos) << unreachable.log();
  EXPECT_NE(unreachable.log().find("cannot connect"), std::string::npos) << unreachable.log();

  ServeProcess no_queue(data_dir, {"--worker-only"});
  EXPECT_EQ(no_queue.stop(), 2) << no_queue.log();
}

}  // namespace
}  // namespace fswap
