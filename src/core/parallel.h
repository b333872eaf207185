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

// The fewest rows worth a chunk of an image whose rows hold `row_pixels` pixels: at least
// 32768 pixels, so an image under twice that (a face's region at 1080p) runs on the calling
// thread. Handing a batch to the pool's workers and waiting for its last chunk costs tens of
// microseconds on a 16-core machine, more than such an image's rows take.
int rows_per_chunk(int row_pixels);

}  // namespace fswap
