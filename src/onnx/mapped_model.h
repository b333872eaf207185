// MappedModel: an .onnx file mapped read-only, parsed without copying its weights. Protobuf
// would copy every initializer's raw_data into a string of its own (a large model's load was
// mostly that copy and its page faults); here the file's bytes are scanned once in protobuf's
// wire format, the ModelProto is parsed from a copy without the initializers' raw_data (a few
// KiB to MiB), and each initializer's raw_data is a span of the mapping, valid while the
// MappedModel lives.
//
//   FSWAP_ASSIGN_OR_RETURN(MappedModel m, MappedModel::open("models/gfpgan_1.4.onnx"));
//   const onnx::TensorProto& w = m.proto().graph().initializer(0);   // raw_data cleared
//   std::optional<std::span<const std::byte>> bytes = m.raw_data(0);  // nullopt when the file had none
//
// Only ModelProto.graph.initializer[i].raw_data is left in the file; everything else (node
// attributes' tensors, typed data fields, external data references) is parsed as protobuf does.
// Errors: missing file kNotFound; a folder, an unreadable file or bytes that are not a ModelProto
// with a graph kInvalidInput "<path>: not a valid ONNX model" (truncated or malformed wire data
// included). Movable, not copyable; read-only once opened, so usable from several threads.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "onnx/onnx.pb.h"

namespace fswap {

class MappedModel {
 public:
  static Result<MappedModel> open(const std::string& path);
  ~MappedModel();
  MappedModel(MappedModel&&) noexcept;
  MappedModel& operator=(MappedModel&&) noexcept;

  // Where an initializer's raw_data lies in the file.
  struct Range {
    bool present = false;
    std::size_t offset = 0, length = 0;
  };

  const onnx::ModelProto& proto() const { return *proto_; }
  // Initializer i's raw_data in the mapped file; nullopt when it has none (typed fields, external).
  std::optional<std::span<const std::byte>> raw_data(int initializer) const;

 private:
  MappedModel() = default;
  struct Mapping;
  std::unique_ptr<const Mapping> mapping_;
  std::unique_ptr<onnx::ModelProto> proto_;
  std::vector<Range> raw_ranges_;  // by initializer, in file order
};

}  // namespace fswap
