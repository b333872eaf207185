// Loads an .onnx file into the native engine's graph IR (runtime/graph.h).
//
//   FSWAP_ASSIGN_OR_RETURN(Graph g, load_onnx("models/fr_detect.onnx"));
//   FSWAP_RETURN_IF_ERROR(optimize(g));   // runtime/passes.h
//
// What the loader does and guarantees:
// - ai.onnx opsets 9 to 21; a node of any other domain, or an op outside FSWAP_OP_LIST, is
//   kUnsupported "<path>: node <name>: operator <op> (domain <d>) is not supported by the
//   native engine";
// - initializers become WeightBlocks (float32, float16, int64, int32, int8, uint8, bool, double;
//   raw_data or the typed fields); external data (location/offset/length, relative to the
//   model's folder) is read from its file, so models over 2 GB load; the model file itself is
//   mapped (onnx/mapped_model.h), each raw_data copied once from the mapping, on the worker
//   threads (core/parallel.h);
// - Constant nodes stay nodes (fold_constants turns them into Graph::constants);
// - Graph::inputs excludes initializers; dims: dim_value → size, dim_param or unknown → -1;
//   a graph input has known_shape only when all its dims are static;
// - every attribute type the IR holds (int, float, string, ints, floats, tensor); string lists
//   are dropped (no op in FSWAP_OP_LIST reads one); graph attributes are kUnsupported;
// - empty node names become "<op>_<index>"; nodes are sorted topologically when the file is not;
// - errors: missing file kNotFound; unreadable or unparsable kInvalidInput
//   "<path>: not a valid ONNX model"; broken references or cycles kInvalidInput naming the value.
// Thread-safe (no shared state).
#pragma once

#include <string>

#include "core/status.h"
#include "runtime/graph.h"

namespace fswap {

Result<Graph> load_onnx(const std::string& path);

}  // namespace fswap
