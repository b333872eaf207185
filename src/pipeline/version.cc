#include "fswap/fswap.h"

namespace fswap {

const char* version() { return FSWAP_VERSION; }

}  // namespace fswap
