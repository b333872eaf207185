// parallel_for: split [0, n) into contiguous chunks run on a shared pool of worker threads.
//
//   parallel_for(height, [&](int y0, int y1) { for (int y = y0; y < y1; ++y) row(y); });
//
// The calling thread takes part. Thread count is set once per process with
// set_worker_threads() (the CLI's --threads); default: hardware concurrency.
// Nested calls run serially on the calling thread. Thread-safe: calls from several threads
// run side by side, the pool's idle workers taking chunks from the oldest first.
#pragma once

#include <functional>

namespace fswap {

void set_worker_threads(int threads);
int worker_threads();

// Runs fn(begin, end) over chunks of at least min_chunk items; returns when all are done.
void parallel_for(int n, const std::function<void(int, int)>& fn, int min_chunk = 1);

}  // namespace fswap
