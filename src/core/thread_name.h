// Thread names for top -H, htop and debuggers: each long-lived thread says what it does.
//
//   std::thread decoder([&] { name_this_thread("fswap-decode"); ... });
//
// Threads a named thread starts (an encoder's or a decoder's own) inherit its name.
#pragma once

namespace fswap {

// Names the calling thread; Linux keeps the first 15 bytes. Best effort: a failure is ignored.
void name_this_thread(const char* name);

}  // namespace fswap
