#include "core/thread_name.h"

#include <pthread.h>

#include <string>

namespace fswap {

void name_this_thread(const char* name) {
  const std::string kept = std::string(name).substr(0, 15);
  (void)pthread_setname_np(pthread_self(), kept.c_str());
}

}  // namespace fswap
