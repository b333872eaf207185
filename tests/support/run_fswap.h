// run_fswap: runs the fswap binary under test (FSWAP_BINARY) with `args` through the shell and
// returns its exit code and everything it printed (stdout and stderr together).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace fswap::test {

struct RunResult {
  int code = -1;        // the exit status; -1 when it did not exit normally
  std::string output;   // stdout + stderr
};

inline RunResult run_fswap(const std::string& args) {
  const std::string cmd = std::string(FSWAP_BINARY) + " " + args + " 2>&1";
  RunResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) r.output += buf;
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace fswap::test
