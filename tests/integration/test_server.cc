// Black-box tests of `fswap serve`: start the real binary on a free loopback port with a
// scratch data dir, then drive it over HTTP with cpp-httplib's client.
#include <gtest/gtest.h>
#include <httplib.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/serve_process.h"
#include "video/media.h"

namespace fswap {
namespace {

using namespace testing_server;

// Shared by the tests below, in order: one server on one data dir, restarted at the end.
struct Shared {
  std::string data_dir = (scratch_root() / "data").string();
  std::unique_ptr<ServeProcess> server;
  std::string image_job;
};
Shared& shared() {
  static Shared s;
  return s;
}

class ServerTest : public ::testing::Test {
 protected:
  // One job at a time: the cancel test needs its second job to wait.
  static void SetUpTestSuite() {
    shared().server = std::make_unique<ServeProcess>(shared().data_dir, std::vector<std::string>{"--max-running-jobs", "1"});
  }
  static void TearDownTestSuite() {
    shared().server.reset();
    std::error_code ec;
    fs::remove_all(scratch_root(), ec);
  }
  ServeProcess& server() { return *shared().server; }
};

TEST_F(ServerTest, HealthReadyOpenApiMetrics) {
  ASSERT_GT(server().port(), 0) << server().log();
  auto c = server().client();
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto api = c.Get("/v1/openapi.json");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 200);
  const auto doc = json::parse(api->body);
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");
  for (const char* path : {"/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/result", "/healthz", "/readyz", "/metrics"})
    EXPECT_TRUE(doc["paths"].contains(path)) << path;
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("fswap_up 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("fswap_jobs{state=\"queued\"}"), std::string::npos);
  EXPECT_NE(metrics->body.find("fswap_frames_processed_total"), std::string::npos);
  // Every sample line parses as `name{labels} value`; the device-memory series are there (0 on
  // the CPU), with the running jobs and the frame rate.
  const std::regex sample(R"(([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+))");
  std::set<std::string> names;
  std::istringstream lines(metrics->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, sample)) << line;
    names.insert(m[1]);
  }
  for (const char* name : {"fswap_vram_budget_bytes", "fswap_vram_used_bytes", "fswap_vram_peak_bytes",
                           "fswap_host_to_device_bytes_total", "fswap_device_to_host_bytes_total", "fswap_evictions_total",
                           "fswap_running_jobs", "fswap_max_running_jobs", "fswap_frames_per_second"})
    EXPECT_TRUE(names.count(name)) << name << " missing from\n" << metrics->body;
  EXPECT_NE(metrics->body.find("\nfswap_vram_used_bytes 0\n"), std::string::npos) << "the CPU uses no device memory";
  EXPECT_NE(metrics->body.find("\nfswap_max_running_jobs 1\n"), std::string::npos);
}

TEST_F(ServerTest, ImageJobRoundTrip) {
  auto c = server().client();
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "messi5.jpg", "../../etc/passwd"),
                                                             file_part("target", kMedia + "astronaut.png", "t.png")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const auto created = json::parse(r->body);
  const std::string id = created["id"];
  EXPECT_EQ(created["state"], "queued");
  const json job = wait_for_job(c, id);
  ASSERT_EQ(job.value("state", ""), "done") << job.dump() << server().log();
  EXPECT_EQ(job["progress"]["frames_done"], 1);

  auto res = c.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "image/png");
  const std::string out = (scratch_root() / "image_result.png").string();
  std::ofstream(out, std::ios::binary) << res->body;
  auto decoded = read_image(out);
  ASSERT_TRUE(decoded) << decoded.status().message();
  auto target = read_image(kMedia + "astronaut.png");
  ASSERT_TRUE(target);
  EXPECT_EQ(decoded->width, target->width);
  EXPECT_EQ(decoded->height, target->height);
  // The client's file name went nowhere near the file system.
  EXPECT_FALSE(fs::exists(fs::path(shared().data_dir) / "jobs" / id / "passwd"));
  EXPECT_TRUE(fs::exists(fs::path(shared().data_dir) / "jobs" / id / "source_0.jpg"));
}

TEST_F(ServerTest, VideoJobAndRangeRequest) {
  auto c = server().client();
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                             file_part("target", kMedia + "messi_720p.mp4"),
                                                             options_part(R"({"trim_frame_end": 30})")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  const json job = wait_for_job(c, id, 45s);
  ASSERT_EQ(job.value("state", ""), "done") << job.dump() << server().log();

  auto res = c.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "video/mp4");
  const std::string out = (scratch_root() / "video_result.mp4").string();
  std::ofstream(out, std::ios::binary) << res->body;
  EXPECT_NEAR(count_video_frames(out), 30, 1);

  auto part = c.Get(("/v1/jobs/" + id + "/result").c_str(), httplib::Headers{{"Range", "bytes=100-1123"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, res->body.substr(100, 1024));
}

// output_video_fps on a server that makes videos in segments (the default): the job runs in
// segments like any video job and its result has the new rate (30 frames at 30 fps → 15 at 15 fps).
TEST_F(ServerTest, VideoJobWithAnOutputFpsRunsInSegments) {
  auto c = server().client();
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                             file_part("target", kMedia + "messi_720p.mp4"),
                                                             options_part(R"({"trim_frame_end": 30, "output_video_fps": 15})")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  const json job = wait_for_job(c, id, 45s);
  ASSERT_EQ(job.value("state", ""), "done") << job.dump() << server().log();
  auto res = c.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string out = (scratch_root() / "fps_result.mp4").string();
  std::ofstream(out, std::ios::binary) << res->body;
  auto reader = VideoReader::open(out);
  ASSERT_TRUE(reader) << reader.status().message();
  EXPECT_NEAR((*reader)->info().frame_rate.value(), 15.0, 0.01);
  EXPECT_NEAR(count_video_frames(out), 15, 1);
}

TEST_F(ServerTest, CancelQueuedAndRunningJobs) {
  auto c = server().client();
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {  // the whole clip: long enough that the second one waits
    auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                               file_part("target", kMedia + "messi_720p.mp4")});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    ids.push_back(json::parse(r->body)["id"]);
  }
  auto second = c.Delete(("/v1/jobs/" + ids[1]).c_str());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200) << second->body;
  EXPECT_EQ(json::parse(second->body)["state"], "cancelled");
  auto result = c.Get(("/v1/jobs/" + ids[1] + "/result").c_str());
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 409);
  EXPECT_EQ(error_code(result), "job_not_done");

  auto first = c.Delete(("/v1/jobs/" + ids[0]).c_str());
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->status == 200 || first->status == 202) << first->body;
  EXPECT_EQ(wait_for_job(c, ids[0]).value("state", ""), "cancelled");
  auto again = c.Delete(("/v1/jobs/" + ids[0]).c_str());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);
}

TEST_F(ServerTest, BadRequestsAreRefusedAndTheServerStaysUp) {
  auto c = server().client();
  c.set_url_encode(false);
  const std::string text = (scratch_root() / "notes.txt").string();
  std::ofstream(text) << "this is not an image\n";
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                             file_part("target", text, "notes.png")});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415);
  EXPECT_EQ(error_code(r), "unsupported_media_type");

  const std::string png = read_file(kMedia + "astronaut.png");
  auto truncated = c.Post("/v1/jobs", httplib::MultipartFormDataItems{{"source", png.substr(0, png.size() / 3), "s.png", "image/png"},
                                                                     file_part("target", kMedia + "messi5.jpg")});
  ASSERT_TRUE(truncated);
  EXPECT_EQ(truncated->status, 400) << truncated->body;
  EXPECT_EQ(error_code(truncated), "invalid_media");

  auto unknown = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                                   file_part("target", kMedia + "messi5.jpg"),
                                                                   options_part(R"({"face_swapper_model": "x"})")});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
  EXPECT_EQ(error_code(unknown), "invalid_options");

  auto out_of_range = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                                        file_part("target", kMedia + "messi5.jpg"),
                                                                        options_part(R"({"face_mask_blur": 7})")});
  ASSERT_TRUE(out_of_range);
  EXPECT_EQ(out_of_range->status, 400);

  auto no_target = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png")});
  ASSERT_TRUE(no_target);
  EXPECT_EQ(error_code(no_target), "missing_target");

  for (const char* path : {"/v1/jobs/../jobs.db", "/v1/jobs/..", "/v1/jobs/..%2F..%2Fjobs.db", "/v1/jobs/%2e%2e/result",
                           "/v1/jobs/ABC/result"}) {
    auto t = c.Get(path);
    ASSERT_TRUE(t) << path;
    EXPECT_TRUE(t->status == 400 || t->status == 404) << path << " → " << t->status;
    EXPECT_NE(error_code(t).front(), '<') << path;
  }
  auto missing = c.Get("/v1/jobs/0123abcd-0000-4000-8000-000000000000");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(error_code(missing), "job_not_found");
  auto del_missing = c.Delete("/v1/jobs/0123abcd-0000-4000-8000-000000000000");
  ASSERT_TRUE(del_missing);
  EXPECT_EQ(del_missing->status, 404);

  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// FaceFusion's models are job options too: accepted and echoed; the job then fails cleanly, naming
// the model file the models dir lacks. Bad processor lists are refused before anything is stored.
TEST_F(ServerTest, FaceFusionModelOptions) {
  auto c = server().client();
  for (const char* bad : {R"({"processors": []})", R"({"processors": ["face_swapper", "face_swapper"]})",
                          R"({"processors": ["face_debugger"]})", R"({"processors": "face_swapper"})",
                          R"({"face_enhancer_model": "gfpgan_9"})", R"({"face_enhancer_blend": 101})",
                          R"({"frame_enhancer_model": "real_esrgan_x3"})", R"({"frame_enhancer_blend": -1})",
                          R"({"face_selector_gender": "other"})", R"({"face_selector_order": "random"})",
                          R"({"face_selector_age_start": 50, "face_selector_age_end": 20})"}) {
    auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                               file_part("target", kMedia + "messi5.jpg"),
                                                               options_part(bad)});
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad << " → " << r->body;
    EXPECT_EQ(error_code(r), "invalid_options") << bad;
  }
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{
                                  file_part("source", kMedia + "astronaut.png"), file_part("target", kMedia + "messi5.jpg"),
                                  options_part(R"({"face_swapper_model": "hyperswap_1a_256",
                                                   "processors": ["face_swapper", "face_enhancer", "frame_enhancer"],
                                                   "face_enhancer_model": "gpen_bfr_512", "face_enhancer_blend": 40,
                                                   "frame_enhancer_model": "real_esrgan_x4", "frame_enhancer_blend": 60})")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  const json job = wait_for_job(c, id);
  EXPECT_EQ(job["options"]["face_swapper_model"], "hyperswap_1a_256");
  EXPECT_EQ(job["options"]["processors"], (json{"face_swapper", "face_enhancer", "frame_enhancer"}));
  EXPECT_EQ(job["options"]["frame_enhancer_model"], "real_esrgan_x4");
  EXPECT_EQ(job["options"]["frame_enhancer_blend"], 60);

  // The selector's filters need fairface.onnx, which the models dir lacks: a clean failure naming it.
  auto filtered = c.Post("/v1/jobs", httplib::MultipartFormDataItems{
                                         file_part("source", kMedia + "astronaut.png"), file_part("target", kMedia + "messi5.jpg"),
                                         options_part(R"({"face_selector_mode": "one", "face_selector_order": "left-right",
                                                          "face_selector_gender": "male", "face_selector_age_start": 20})")});
  ASSERT_TRUE(filtered);
  ASSERT_EQ(filtered->status, 201) << filtered->body;
  const json f = wait_for_job(c, json::parse(filtered->body)["id"]);
  EXPECT_EQ(f["options"]["face_selector_order"], "left-right");
  EXPECT_EQ(f["options"]["face_selector_gender"], "male");
  EXPECT_EQ(f["options"]["face_selector_age_start"], 20);
  EXPECT_FALSE(f["options"].contains("face_selector_race"));
  ASSERT_EQ(f.value("state", ""), "failed") << f.dump();
  EXPECT_NE(f["error"]["message"].get<std::string>().find("fairface.onnx"), std::string::npos) << f.dump();
  EXPECT_EQ(job["options"]["face_enhancer_model"], "gpen_bfr_512");
  EXPECT_EQ(job["options"]["face_enhancer_blend"], 40);
  ASSERT_EQ(job.value("state", ""), "failed") << job.dump();
  EXPECT_EQ(job["error"]["code"], "not_found") << job.dump();
  EXPECT_NE(job["error"]["message"].get<std::string>().find(".onnx"), std::string::npos) << job.dump();
}

// ctest runs each test in its own process, so this one makes its own finished job.
TEST_F(ServerTest, RestartKeepsTheJobs) {
  {
    auto c = server().client();
    auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "messi5.jpg"),
                                                               file_part("target", kMedia + "astronaut.png")});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    shared().image_job = json::parse(r->body)["id"];
    ASSERT_EQ(wait_for_job(c, shared().image_job).value("state", ""), "done") << server().log();
  }
  auto before = server().client().Get("/v1/jobs");
  ASSERT_TRUE(before);
  const auto jobs_before = json::parse(before->body)["jobs"];
  EXPECT_EQ(server().stop(), 0) << server().log();

  shared().server = std::make_unique<ServeProcess>(shared().data_dir);
  ASSERT_GT(server().port(), 0) << server().log();
  auto c = server().client();
  auto after = c.Get("/v1/jobs");
  ASSERT_TRUE(after);
  const auto jobs_after = json::parse(after->body)["jobs"];
  ASSERT_EQ(jobs_after.size(), jobs_before.size());
  for (std::size_t i = 0; i < jobs_after.size(); ++i) {
    EXPECT_EQ(jobs_after[i]["id"], jobs_before[i]["id"]);
    EXPECT_EQ(jobs_after[i]["state"], jobs_before[i]["state"]);
  }
  auto res = c.Get(("/v1/jobs/" + shared().image_job + "/result").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(ServerLimits, TokenAndUploadLimit) {
  ServeProcess server((scratch_root() / "limits").string(), {"--token", "s3cret", "--max-upload-mb", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto anonymous = server.client();
  auto r = anonymous.Get("/v1/jobs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(error_code(r), "unauthorized");
  auto wrong = server.client("s3creT").Get("/v1/jobs");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto health = anonymous.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto page = anonymous.Get("/");  // the page is open; it sends the token the user types
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto models = anonymous.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);

  auto c = server.client("s3cret");
  auto ok = c.Get("/v1/jobs");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto big = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                               {"target", std::string(2 << 20, 'x'), "big.png", "image/png"}});
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(error_code(big), "payload_too_large");
  auto after = c.Get("/healthz");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(server.stop(), 0);
}

// SIGTERM mid-job: the server exits cleanly, the job goes back to the queue and finishes
// after the restart. Also the queue limit: one queued job at most, the next one gets 429.
TEST(ServerLimits, InterruptedJobFinishesAfterRestartAndQueueLimit) {
  const std::string data_dir = (scratch_root() / "interrupt").string();
  auto server = std::make_unique<ServeProcess>(data_dir, std::vector<std::string>{"--max-queued", "1", "--max-running-jobs", "1"});
  ASSERT_GT(server->port(), 0) << server->log();
  auto submit = [&](httplib::Client& c) {
    return c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                             file_part("target", kMedia + "messi_720p.mp4"),
                                                             options_part(R"({"trim_frame_end": 90})")});
  };
  auto c = server->client();
  auto a = submit(c);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 201) << a->body;
  const std::string id = json::parse(a->body)["id"];
  json job;
  for (int i = 0; i < 200; ++i) {  // until it runs and has made progress
    job = json::parse(c.Get(("/v1/jobs/" + id).c_str())->body);
    if (job["state"] == "running" && job["progress"]["frames_done"].get<int>() > 0) break;
    std::this_thread::sleep_for(25ms);
  }
  ASSERT_EQ(job["state"], "running") << job.dump();
  auto b = submit(c);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 201);
  auto full = submit(c);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 429);
  EXPECT_EQ(error_code(full), "queue_full");

  EXPECT_EQ(server->stop(), 0) << server->log();
  server = std::make_unique<ServeProcess>(data_dir);
  ASSERT_GT(server->port(), 0) << server->log();
  auto c2 = server->client();
  EXPECT_EQ(wait_for_job(c2, id, 45s).value("state", ""), "done") << server->log();
  auto res = c2.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const std::string second = json::parse(b->body)["id"];
  c2.Delete(("/v1/jobs/" + second).c_str());
}

TEST_F(ServerTest, WebPageModelsAndPreview) {
  auto c = server().client();
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type").rfind("text/html", 0), 0u);
  for (const char* needle : {"<form id=\"job-form\"", "id=\"source\"", "id=\"target\"", "id=\"face_swapper_model\"",
                             "/v1/jobs", "<progress"})
    EXPECT_NE(page->body.find(needle), std::string::npos) << needle;
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "the page must not load anything from elsewhere";
  EXPECT_EQ(page->body.find("https://"), std::string::npos);

  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200) << models->body;
  const auto body = json::parse(models->body);
  const std::string dir = body["models_dir"];
  std::vector<std::string> names;
  for (const auto& m : body["models"]) {
    names.push_back(m["name"]);
    const bool present = fs::is_regular_file(fs::path(dir) / m["name"].get<std::string>());
    EXPECT_EQ(m["state"], present ? "present" : "missing") << m.dump();
    for (const char* key : {"model", "role", "used_by", "licence", "source", "url"})
      EXPECT_TRUE(m.contains(key) && m[key].is_string()) << key << " in " << m.dump();
    EXPECT_TRUE(m["hash"] == "pinned" || m["hash"] == "unverified") << m.dump();
  }
  // Exactly the registry's files, in its order (the catalogue `fswap models list` shows).
  std::ifstream registry_file(std::string(FSWAP_SOURCE_DIR) + "/models/facefusion_models.json");
  const json registry = json::parse(registry_file);
  std::vector<std::string> registry_files;
  for (const auto& m : registry.at("models")) registry_files.push_back(m["file"]);
  EXPECT_EQ(names, registry_files);
  for (const char* file : {"fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "blazeface_back_256.onnx",
                           "inswapper_128.onnx", "arcface_w600k_r50.onnx", "fairface.onnx", "hyperswap_1a_256.onnx",
                           "crossface_ghost.onnx", "gfpgan_1.4.onnx", "xseg_3.onnx", "real_esrgan_x8_fp16.onnx"})
    EXPECT_NE(std::find(names.begin(), names.end(), file), names.end()) << file;
  for (const auto& m : body["models"]) {
    if (m["name"] == "fr_detect.onnx") {
      EXPECT_EQ(m["hash"], "pinned");  // fswap's defaults are pinned
    }
    if (m["name"] == "inswapper_128.onnx") {
      EXPECT_EQ(m["hash"], "unverified") << "no published hash in the reference";
      EXPECT_EQ(m["used_by"], "--face-swapper-model inswapper_128");
    }
  }

  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "messi5.jpg"),
                                                             file_part("target", kMedia + "astronaut.png"),
                                                             options_part(R"({"face_swapper_model": "classical"})")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  auto early = c.Get(("/v1/jobs/" + id + "/preview").c_str());
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->status == 409 || early->status == 200) << early->status;
  const json job = wait_for_job(c, id);
  ASSERT_EQ(job.value("state", ""), "done") << job.dump() << server().log();
  EXPECT_EQ(job["options"]["face_swapper_model"], "classical");
  EXPECT_EQ(job["preview_url"], "/v1/jobs/" + id + "/preview");
  for (int i = 0; i < 2; ++i) {  // made, then served from the job folder
    auto preview = c.Get(("/v1/jobs/" + id + "/preview").c_str());
    ASSERT_TRUE(preview);
    ASSERT_EQ(preview->status, 200) << preview->body;
    EXPECT_EQ(preview->get_header_value("Content-Type"), "image/png");
    const std::string out = (scratch_root() / ("preview" + std::to_string(i) + ".png")).string();
    std::ofstream(out, std::ios::binary) << preview->body;
    auto decoded = read_image(out);
    ASSERT_TRUE(decoded) << decoded.status().message();
    auto target = read_image(kMedia + "astronaut.png");
    ASSERT_TRUE(target);
    EXPECT_EQ(decoded->width, target->width);
    EXPECT_EQ(decoded->height, target->height);
  }
}

// kill -9 mid-job: nothing gets to clean up; the restart finds the job "running" in the
// store, queues it again, and it finishes with a complete, valid MP4.
// kill -9 after the first segments of a clip are finished: the restarted server resumes the job
// from the last finished segment (segments of 10 frames) and does not make those frames again.
TEST(ServerLimits, KilledServerFinishesTheVideoJobAfterRestart) {
  const std::string data_dir = (scratch_root() / "killed").string();
  const std::vector<std::string> args = {"--segment-frames", "10"};
  auto server = std::make_unique<ServeProcess>(data_dir, args);
  ASSERT_GT(server->port(), 0) << server->log();
  auto c = server->client();
  auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                             file_part("target", kMedia + "messi_720p.mp4"),
                                                             options_part(R"({"trim_frame_end": 60})")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  const json job = wait_until_running(c, id, 25);
  ASSERT_EQ(job["state"], "running") << job.dump();
  const int done_before_kill = job["progress"]["frames_done"].get<int>();
  ASSERT_LT(done_before_kill, 60) << "the job finished before the kill";
  server->kill9();

  server = std::make_unique<ServeProcess>(data_dir, args);
  ASSERT_GT(server->port(), 0) << server->log();
  EXPECT_NE(server->log().find("1 interrupted job(s) queued again"), std::string::npos) << server->log();
  auto c2 = server->client();
  const json done = wait_for_job(c2, id, 90s);
  ASSERT_EQ(done.value("state", ""), "done") << done.dump() << server->log();
  EXPECT_EQ(done["progress"]["frames_done"], 60);
  // Whole segments made before the kill were reused: at least the 20 frames of the two segments
  // finished by frame 25, at most what was done, and only the rest was made again.
  std::smatch m;
  const std::string log = server->log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("job " + id + R"( resumed: (\d+) frames reused from finished segments, (\d+) made)")))
      << log;
  const int reused = std::stoi(m[1]), made = std::stoi(m[2]);
  EXPECT_GE(reused, 20);
  EXPECT_LE(reused, done_before_kill);
  EXPECT_EQ(reused % 10, 0);
  EXPECT_EQ(reused + made, 60);
  EXPECT_EQ(done["progress"]["frames_resumed"], reused) << "the job's status tells what was reused";
  EXPECT_TRUE(done["memory"].is_null()) << "no device memory on the CPU: " << done.dump();
  EXPECT_FALSE(fs::exists(fs::path(data_dir) / "jobs" / id / "segments")) << "the segments are removed when the job is done";
  auto res = c2.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string out = (scratch_root() / "killed_result.mp4").string();
  std::ofstream(out, std::ios::binary) << res->body;
  EXPECT_NEAR(count_video_frames(out), 60, 1);
  auto preview = c2.Get(("/v1/jobs/" + id + "/preview").c_str());  // frame 0 of the video
  ASSERT_TRUE(preview);
  ASSERT_EQ(preview->status, 200) << preview->body;
  const std::string png = (scratch_root() / "killed_preview.png").string();
  std::ofstream(png, std::ios::binary) << preview->body;
  auto decoded = read_image(png);
  ASSERT_TRUE(decoded) << decoded.status().message();
  EXPECT_EQ(decoded->width, 1280);
}

// 20 jobs sent at once from 4 client threads: 20 distinct ids, every one done exactly once
// and downloadable.
TEST(ServerLimits, TwentyQueuedJobsAllComplete) {
  ServeProcess server((scratch_root() / "twenty").string());
  ASSERT_GT(server.port(), 0) << server.log();
  const std::string source = read_file(kMedia + "astronaut.png"), target = read_file(kMedia + "messi5.jpg");
  std::vector<std::string> ids(20);
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t)
    senders.emplace_back([&, t] {
      auto c = server.client();
      for (int i = t; i < 20; i += 4) {
        auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{{"source", source, "s.png", "image/png"},
                                                                   {"target", target, "t.jpg", "image/jpeg"}});
        if (r && r->status == 201) ids[i] = json::parse(r->body)["id"];
      }
    });
  for (auto& s : senders) s.join();
  const std::set<std::string> unique(ids.begin(), ids.end());
  ASSERT_EQ(unique.size(), 20u);
  ASSERT_FALSE(unique.count(""));
  auto c = server.client();
  for (const auto& id : ids) EXPECT_EQ(wait_for_job(c, id, 90s).value("state", ""), "done") << id << server.log();
  auto list = c.Get("/v1/jobs");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body.substr(0, 300);
  std::multiset<std::string> listed;
  const json jobs = json::parse(list->body)["jobs"];  // a named copy: the parsed temporary dies before a range-for body
  for (const auto& j : jobs) {
    listed.insert(j["id"].get<std::string>());
    EXPECT_EQ(j["state"], "done");
    EXPECT_EQ(j["progress"]["frames_done"], 1);
  }
  EXPECT_EQ(listed, std::multiset<std::string>(ids.begin(), ids.end()));
  for (const auto& id : ids) {
    auto res = c.Get(("/v1/jobs/" + id + "/result").c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << id;
    EXPECT_EQ(res->body.substr(0, 3), "\xff\xd8\xff") << id;
  }
}

// Decoded frames of a video, in order.
std::vector<Image> video_frames(const std::string& path) {
  std::vector<Image> frames;
  auto reader = VideoReader::open(path);
  if (!reader) return frames;
  VideoFrame f;
  for (auto got = (*reader)->read(f); got && *got; got = (*reader)->read(f)) frames.push_back(f.image);
  return frames;
}

// Three jobs at once (two clips and a photo) on a server running 3 jobs together: the clips'
// progress interleaves, the face calls go through the shared batcher, and every result equals
// the one a one-job-at-a-time server makes.
TEST(ServerLimits, ConcurrentJobsGiveTheResultsOfRunningAlone) {
  struct Sent {
    std::string target, options, id;
  };
  auto send_all = [](ServeProcess& server) {
    std::vector<Sent> jobs = {{"messi_720p.mp4", R"({"trim_frame_end": 24})", ""},
                              {"astronaut_720p.mp4", R"({"trim_frame_end": 24})", ""},
                              {"messi5.jpg", "", ""}};
    auto c = server.client();
    for (auto& j : jobs) {
      auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{file_part("source", kMedia + "astronaut.png"),
                                                                 file_part("target", kMedia + j.target),
                                                                 options_part(j.options)});
      EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
      if (r && r->status == 201) j.id = json::parse(r->body)["id"];
    }
    return jobs;
  };
  auto result_of = [](ServeProcess& server, const Sent& j, const std::string& name) {
    auto c = server.client();
    auto r = c.Get(("/v1/jobs/" + j.id + "/result").c_str());
    const std::string path = (scratch_root() / name).string();
    if (r && r->status == 200) std::ofstream(path, std::ios::binary) << r->body;
    return path;
  };

  ServeProcess together((scratch_root() / "together").string(), {"--max-running-jobs", "3"});
  ASSERT_GT(together.port(), 0) << together.log();
  const auto jobs = send_all(together);
  auto c = together.client();
  bool interleaved = false;  // both clips running with frames done at one moment
  int most_running = 0;
  for (int i = 0; i < 2400 && !interleaved; ++i) {
    const json a = json::parse(c.Get(("/v1/jobs/" + jobs[0].id).c_str())->body);
    const json b = json::parse(c.Get(("/v1/jobs/" + jobs[1].id).c_str())->body);
    auto midway = [](const json& j) {
      return j["state"] == "running" && j["progress"]["frames_done"].get<int>() > 0 &&
             j["progress"]["frames_done"].get<int>() < 24;
    };
    interleaved = midway(a) && midway(b);
    const std::string metrics = c.Get("/metrics")->body;
    std::smatch m;
    if (std::regex_search(metrics, m, std::regex(R"(\nfswap_running_jobs (\d+)\n)")))
      most_running = std::max(most_running, std::stoi(m[1]));
    if (a["state"] == "done" && b["state"] == "done") break;
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_TRUE(interleaved) << "the two clips never made progress at the same time";
  EXPECT_GE(most_running, 2);
  for (const auto& j : jobs) ASSERT_EQ(wait_for_job(c, j.id, 90s).value("state", ""), "done") << j.target << together.log();
  const std::string metrics = c.Get("/metrics")->body;
  std::smatch calls;
  ASSERT_TRUE(std::regex_search(metrics, calls, std::regex(R"(\nfswap_face_calls_total (\d+)\n)"))) << metrics;
  EXPECT_GE(std::stoll(calls[1]), 3 * 24);  // at least a detection per frame went through the batcher

  ServeProcess alone((scratch_root() / "alone").string(), {"--max-running-jobs", "1"});
  ASSERT_GT(alone.port(), 0) << alone.log();
  const auto again = send_all(alone);
  auto c1 = alone.client();
  for (const auto& j : again) ASSERT_EQ(wait_for_job(c1, j.id, 90s).value("state", ""), "done") << j.target << alone.log();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const std::string ext = fs::path(jobs[i].target).extension().string();
    const std::string a = result_of(together, jobs[i], "together" + std::to_string(i) + ext);
    const std::string b = result_of(alone, again[i], "alone" + std::to_string(i) + ext);
    if (ext == ".jpg") {
      EXPECT_EQ(read_file(a), read_file(b)) << jobs[i].target;
      continue;
    }
    const auto fa = video_frames(a), fb = video_frames(b);
    ASSERT_EQ(fa.size(), 24u) << jobs[i].target;
    ASSERT_EQ(fb.size(), 24u) << jobs[i].target;
    for (std::size_t f = 0; f < fa.size(); ++f) EXPECT_TRUE(fa[f].pixels == fb[f].pixels) << jobs[i].target << " frame " << f;
  }
}

std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A PNG whose IHDR (valid CRC) claims 100000×100000 RGB, then garbage: refused up front.
TEST_F(ServerTest, AbsurdImageDimensionsAreRefused) {
  std::string ihdr = "IHDR" + be32(100000) + be32(100000) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc32(ihdr));
  for (int i = 0; i < 4096; ++i) png.push_back(static_cast<char>((i * 7919) & 0xff));
  auto c = server().client();
  for (const char* field : {"target", "source"}) {
    const bool as_target = std::string(field) == "target";
    auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{
                                    as_target ? file_part("source", kMedia + "astronaut.png") : httplib::MultipartFormData{"source", png, "a.png", "image/png"},
                                    as_target ? httplib::MultipartFormData{"target", png, "a.png", "image/png"} : file_part("target", kMedia + "messi5.jpg")});
    ASSERT_TRUE(r) << field;
    EXPECT_GE(r->status, 400) << field << " " << r->body;
    EXPECT_LT(r->status, 500) << field << " " << r->body;
    EXPECT_EQ(error_code(r), "image_too_large") << field;
  }
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace fswap
