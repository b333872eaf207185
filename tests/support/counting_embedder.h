// A fake embedder for ReferenceTracker tests: a face's identity is encoded in its score (above
// 0.85 → the reference person), and the calls are counted.
//
//   CountingEmbedder embedder;
//   auto chosen = tracker.match(faces, std::ref(embedder));   // embedder.calls: faces embedded
#pragma once

#include <vector>

#include "core/status.h"
#include "face/face.h"

namespace fswap::test {

struct CountingEmbedder {
  int calls = 0;
  Status operator()(Face& f) {
    ++calls;
    f.embedding = f.score > 0.85f ? std::vector<float>{0, 1} : std::vector<float>{1, 0};
    return Status::ok();
  }
};

}  // namespace fswap::test
