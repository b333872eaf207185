// The text of `fswap model inspect MODEL.onnx`: what a model takes and gives, what it is made
// of, and what it costs to run on the native engine.
//
//   FSWAP_ASSIGN_OR_RETURN(std::string text, describe_model("models/fr_detect.onnx"));
//   std::fputs(text.c_str(), stdout);
//
// Sections: inputs and outputs (dtype, shape, dynamic dims as ?), op histogram before and after
// optimize() with the fusions it made, parameter count and weight bytes, FLOPs per batch item,
// the activation arena's peak bytes at batch 1 and 8 as the CPU executor plans it, and at batch 1
// the plan the CUDA executor makes (fp16, channels-last islands where they pay; runtime/
// device_graph.h): its arena, the node order kept and the arena in the model's order, the most
// bytes live at once, the largest weight, and the values live at the peak. The batch is dim 0 of every input
// whose dim 0 is dynamic; a model with a fixed batch of 1 stays at 1 (the text says so). When
// other dims are dynamic, or shapes cannot be inferred, the cost lines say why instead.
// Errors: those of load_onnx and optimize. Thread-safe.
#pragma once

#include <string>

#include "core/status.h"

namespace fswap {

Result<std::string> describe_model(const std::string& path);

}  // namespace fswap
