// scratch_path: a file path in this test process's own scratch folder, removed at exit.
// ctest runs tests as parallel processes, so each process gets FSWAP_TEST_TMP/<tag>-<pid>.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace fswap::test {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag)
      : dir_(std::filesystem::path(FSWAP_TEST_TMP) / (tag + "-" + std::to_string(getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // A fresh path (any file there is removed first).
  std::string path(const std::string& name) const {
    std::filesystem::remove(dir_ / name);
    return (dir_ / name).string();
  }

 private:
  std::filesystem::path dir_;
};

inline std::string scratch_path(const std::string& tag, const std::string& name) {
  static ScratchDir dir(tag);
  return dir.path(name);
}

}  // namespace fswap::test
