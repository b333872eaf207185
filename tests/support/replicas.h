// Replica sets the tests need, generated once per build tree by tools/replicas/generate_replicas.py
// (plus a few extra steps) and shared by every test process:
//   replica_dir           inswapper_128, arcface_w600k_r50, and the emap as FaceFusion reads it
//   detector_replica_dir  yoloface_8n, scrfd_2.5g, retinaface_10g
//   enhancer_replica_dir  gfpgan_1.4 and the tiny enhancer probes of tests/support/make_enhancer_probes.py
//   swapper_probe_dir     the tiny swapper, converter, occluder, parser and landmarker probes of
//                         tests/support/make_swapper_probes.py
//   swapper_replica_dir   hyperswap_1a_256, crossface_simswap, xseg_1 and bisenet_resnet_34
//   landmarker_replica_dir 2dfan4, peppa_wutz and fan_68_5
//   frame_enhancer_probe_dir the tiny frame enhancer probes of tests/support/make_frame_enhancer_probes.py
//   frame_enhancer_replica_dir real_esrgan_x4
// Each returns the folder, or "" with the reason in *why when it cannot be made.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fswap::test {

inline bool run_quiet(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// FSWAP_TEST_TMP/<name>: generate_replicas.py --only `models` (none when empty), then each of `extra_steps` with
// "{dir}" replaced by the folder being built. Built in a private folder, then renamed into place,
// so parallel processes never see half a set; a process that loses the race uses the winner's.
inline std::string generated_replicas(const std::string& name, const std::string& models,
                                      const std::vector<std::string>& extra_steps, std::string* why) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(FSWAP_TEST_TMP) / name;
  if (fs::exists(dir / "ready")) return dir.string();
  if (!run_quiet("/usr/bin/python3 -c 'import onnx, numpy'")) {
    *why = "/usr/bin/python3 lacks the onnx or numpy package, needed to generate the replicas";
    return "";
  }
  const fs::path build = fs::path(FSWAP_TEST_TMP) / (name + "-building-" + std::to_string(::getpid()));
  fs::remove_all(build);
  fs::create_directories(build);
  const std::string script = std::string(FSWAP_SOURCE_DIR) + "/tools/replicas/generate_replicas.py";
  bool ok = models.empty() || run_quiet("/usr/bin/python3 " + script + " --out " + build.string() + " --only " + models);
  for (std::string step : extra_steps) {
    for (std::size_t at; ok && (at = step.find("{dir}")) != std::string::npos;) step.replace(at, 5, build.string());
    ok = ok && run_quiet(step);
  }
  if (!ok) {
    fs::remove_all(build);
    *why = "generating " + name + " (" + models + ") failed";
    return "";
  }
  if (std::FILE* f = std::fopen((build / "ready").c_str(), "w")) std::fclose(f);
  std::error_code ec;
  fs::rename(build, dir, ec);
  if (ec) fs::remove_all(build);
  return fs::exists(dir / "ready") ? dir.string() : "";
}

inline std::string replica_dir(std::string* why) {
  // The emap exactly as FaceFusion reads it (model_helper.get_static_model_initializer).
  const std::string emap =
      "/usr/bin/python3 -c \"import onnx, numpy; from onnx import numpy_helper; "
      "m = onnx.load('{dir}/inswapper_128.onnx'); i = m.graph.initializer[-1]; "
      "numpy.save('{dir}/emap.npy', numpy_helper.to_array(i)); open('{dir}/emap.name', 'w').write(i.name)\"";
  return generated_replicas("facefusion-replicas-v2", "inswapper_128 arcface_w600k_r50", {emap}, why);
}

inline std::string detector_replica_dir(std::string* why) {
  return generated_replicas("facefusion-detector-replicas-v3", "yoloface_8n scrfd_2.5g retinaface_10g", {}, why);
}

inline std::string enhancer_replica_dir(std::string* why) {
  return generated_replicas("facefusion-enhancer-replicas-v2", "gfpgan_1.4",
                            {"/usr/bin/python3 " + std::string(FSWAP_SOURCE_DIR) +
                             "/tests/support/make_enhancer_probes.py {dir}"},
                            why);
}

inline std::string swapper_probe_dir(std::string* why) {
  return generated_replicas("facefusion-swapper-probes-v5", "",
                            {"/usr/bin/python3 " + std::string(FSWAP_SOURCE_DIR) +
                             "/tests/support/make_swapper_probes.py {dir}"},
                            why);
}

inline std::string swapper_replica_dir(std::string* why) {
  // xseg is written as xseg_1, the name --face-occluder-model uses.
  return generated_replicas("facefusion-swapper-replicas-v2", "hyperswap_1a_256 crossface_simswap xseg bisenet_resnet_34",
                            {"mv {dir}/xseg.onnx {dir}/xseg_1.onnx"}, why);
}

inline std::string landmarker_replica_dir(std::string* why) {
  return generated_replicas("facefusion-landmarker-replicas-v3", "2dfan4 peppa_wutz fan_68_5", {}, why);
}

inline std::string frame_enhancer_probe_dir(std::string* why) {
  return generated_replicas("facefusion-frame-enhancer-probes-v2", "",
                            {"/usr/bin/python3 " + std::string(FSWAP_SOURCE_DIR) +
                             "/tests/support/make_frame_enhancer_probes.py {dir}"},
                            why);
}

inline std::string frame_enhancer_replica_dir(std::string* why) {
  return generated_replicas("facefusion-frame-enhancer-replicas-v1", "real_esrgan_x4", {}, why);
}

}  // namespace fswap::test
