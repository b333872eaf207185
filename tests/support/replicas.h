// replica_dir: the FaceFusion replicas the tests need (inswapper_128, arcface_w600k_r50, and
// the emap as FaceFusion reads it), generated once per build tree by
// tools/replicas/generate_replicas.py and shared by every test process. detector_replica_dir:
// the same for FaceFusion's detectors (yoloface_8n, scrfd_2.5g). enhancer_replica_dir: the
// gfpgan_1.4 replica and the tiny enhancer probes of tests/support/make_enhancer_probes.py.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fswap::test {

inline bool run_quiet(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// The folder with the replicas, or "" with the reason in *why when they cannot be made.
// Built in a private folder, then renamed into place, so parallel processes never see half.
inline std::string replica_dir(std::string* why) {
  namespace fs = std::filesystem;
  static const fs::path dir = fs::path(FSWAP_TEST_TMP) / "facefusion-replicas-v1";
  if (fs::exists(dir / "ready")) return dir.string();
  if (!run_quiet("/usr/bin/python3 -c 'import onnx, numpy'")) {
    *why = "/usr/bin/python3 lacks the onnx or numpy package, needed to generate the replicas";
    return "";
  }
  const fs::path build = fs::path(FSWAP_TEST_TMP) / ("facefusion-replicas-building-" + std::to_string(::getpid()));
  fs::remove_all(build);
  fs::create_directories(build);
  const std::string script = std::string(FSWAP_SOURCE_DIR) + "/tools/replicas/generate_replicas.py";
  const std::string b = build.string();
  const bool ok =
      run_quiet("/usr/bin/python3 " + script + " --out " + b + " --only inswapper_128 arcface_w600k_r50") &&
      // The emap exactly as FaceFusion reads it (model_helper.get_static_model_initializer).
      run_quiet("/usr/bin/python3 -c \"import onnx, numpy; from onnx import numpy_helper; "
                "m = onnx.load('" + b + "/inswapper_128.onnx'); i = m.graph.initializer[-1]; "
                "numpy.save('" + b + "/emap.npy', numpy_helper.to_array(i)); open('" + b + "/emap.name', 'w').write(i.name)\"");
  if (!ok) {
    fs::remove_all(build);
    *why = "tools/replicas/generate_replicas.py failed";
    return "";
  }
  if (std::FILE* f = std::fopen((build / "ready").c_str(), "w")) std::fclose(f);
  std::error_code ec;
  fs::rename(build, dir, ec);  // another process may have won the race: then use its copy
  if (ec) fs::remove_all(build);
  return fs::exists(dir / "ready") ? dir.string() : "";
}

// The folder with the detector replicas (yoloface_8n.onnx, scrfd_2.5g.onnx), or "" with the
// reason in *why. Same build-then-rename scheme as replica_dir.
inline std::string detector_replica_dir(std::string* why) {
  namespace fs = std::filesystem;
  static const fs::path dir = fs::path(FSWAP_TEST_TMP) / "facefusion-detector-replicas-v1";
  if (fs::exists(dir / "ready")) return dir.string();
  if (!run_quiet("/usr/bin/python3 -c 'import onnx, numpy'")) {
    *why = "/usr/bin/python3 lacks the onnx or numpy package, needed to generate the replicas";
    return "";
  }
  const fs::path build =
      fs::path(FSWAP_TEST_TMP) / ("facefusion-detector-replicas-building-" + std::to_string(::getpid()));
  fs::remove_all(build);
  fs::create_directories(build);
  const std::string script = std::string(FSWAP_SOURCE_DIR) + "/tools/replicas/generate_replicas.py";
  if (!run_quiet("/usr/bin/python3 " + script + " --out " + build.string() + " --only yoloface_8n scrfd_2.5g")) {
    fs::remove_all(build);
    *why = "tools/replicas/generate_replicas.py --only yoloface_8n scrfd_2.5g failed";
    return "";
  }
  if (std::FILE* f = std::fopen((build / "ready").c_str(), "w")) std::fclose(f);
  std::error_code ec;
  fs::rename(build, dir, ec);  // another process may have won the race: then use its copy
  if (ec) fs::remove_all(build);
  return fs::exists(dir / "ready") ? dir.string() : "";
}

// The folder with gfpgan_1.4.onnx, identity_512.onnx and weight_probe_512.onnx, or "" with the
// reason in *why. Same build-then-rename scheme as replica_dir.
inline std::string enhancer_replica_dir(std::string* why) {
  namespace fs = std::filesystem;
  static const fs::path dir = fs::path(FSWAP_TEST_TMP) / "facefusion-enhancer-replicas-v1";
  if (fs::exists(dir / "ready")) return dir.string();
  if (!run_quiet("/usr/bin/python3 -c 'import onnx, numpy'")) {
    *why = "/usr/bin/python3 lacks the onnx or numpy package, needed to generate the replicas";
    return "";
  }
  const fs::path build =
      fs::path(FSWAP_TEST_TMP) / ("facefusion-enhancer-replicas-building-" + std::to_string(::getpid()));
  fs::remove_all(build);
  fs::create_directories(build);
  const std::string source = std::string(FSWAP_SOURCE_DIR);
  const bool ok = run_quiet("/usr/bin/python3 " + source + "/tools/replicas/generate_replicas.py --out " +
                            build.string() + " --only gfpgan_1.4") &&
                  run_quiet("/usr/bin/python3 " + source + "/tests/support/make_enhancer_probes.py " + build.string());
  if (!ok) {
    fs::remove_all(build);
    *why = "tools/replicas/generate_replicas.py --only gfpgan_1.4 or tests/support/make_enhancer_probes.py failed";
    return "";
  }
  if (std::FILE* f = std::fopen((build / "ready").c_str(), "w")) std::fclose(f);
  std::error_code ec;
  fs::rename(build, dir, ec);  // another process may have won the race: then use its copy
  if (ec) fs::remove_all(build);
  return fs::exists(dir / "ready") ? dir.string() : "";
}

}  // namespace fswap::test
