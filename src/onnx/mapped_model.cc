#include "onnx/mapped_model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

namespace fswap {

struct MappedModel::Mapping {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (data != nullptr) ::munmap(const_cast<std::uint8_t*>(data), size);
  }
};

namespace {

namespace fs = std::filesystem;

// Protobuf's wire format, as far as the scan needs it.
constexpr int kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;
constexpr std::uint64_t kModelGraph = 7, kGraphInitializer = 5, kTensorRawData = 9;  // onnx.proto field numbers

bool read_varint(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const std::uint8_t byte = *p++;
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void write_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

enum class Level { kModel, kGraph, kInitializer };

// Copies the message in [p, end) of `file` into `out` field by field, descending into the graph
// and its initializers, leaving the initializers' raw_data out (each initializer's place is
// appended to `raw`). False when the bytes are not well-formed wire data.
bool strip_raw_data(const std::uint8_t* file, const std::uint8_t* p, const std::uint8_t* end, Level level,
                    std::string& out, std::vector<MappedModel::Range>& raw) {
  while (p < end) {
    const std::uint8_t* field = p;
    std::uint64_t tag = 0, value = 0;
    if (!read_varint(p, end, tag) || (tag >> 3) == 0) return false;
    const std::uint64_t number = tag >> 3;
    switch (static_cast<int>(tag & 7)) {
      case kVarint:
        if (!read_varint(p, end, value)) return false;
        break;
      case kFixed64:
        if (end - p < 8) return false;
        p += 8;
        break;
      case kFixed32:
        if (end - p < 4) return false;
        p += 4;
        break;
      case kLengthDelimited: {
        if (!read_varint(p, end, value) || value > static_cast<std::uint64_t>(end - p)) return false;
        const std::uint8_t* body = p;
        p += value;
        const bool descend = (level == Level::kModel && number == kModelGraph) ||
                             (level == Level::kGraph && number == kGraphInitializer);
        if (descend) {
          if (level == Level::kGraph) raw.emplace_back();
          std::string child;
          if (!strip_raw_data(file, body, p, level == Level::kModel ? Level::kGraph : Level::kInitializer, child, raw))
            return false;
          write_varint(out, tag);
          write_varint(out, child.size());
          out += child;
          continue;
        }
        if (level == Level::kInitializer && number == kTensorRawData) {  // the last one wins, as in protobuf
          raw.back() = {true, static_cast<std::size_t>(body - file), static_cast<std::size_t>(value)};
          continue;
        }
        break;
      }
      default:
        return false;  // groups: not in ONNX's schema
    }
    out.append(reinterpret_cast<const char*>(field), static_cast<std::size_t>(p - field));
  }
  return true;
}

}  // namespace

Result<MappedModel> MappedModel::open(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(path + ": no such file");
  if (fs::is_directory(path, ec)) return invalid_input(path + ": is a folder, not an ONNX model");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return invalid_input(path + ": cannot read (" + ec.message() + ")");
  if (size == 0) return invalid_input(path + ": not a valid ONNX model (an empty file)");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return invalid_input(path + ": cannot open (" + std::strerror(errno) + ")");
  // Populated at once: every byte is read anyway, and one pass of read-ahead beats a fault a page.
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  const int map_error = errno;
  ::close(fd);
  if (data == MAP_FAILED) return invalid_input(path + ": cannot map (" + std::strerror(map_error) + ")");
  auto mapping = std::make_unique<Mapping>();
  mapping->data = static_cast<const std::uint8_t*>(data);
  mapping->size = static_cast<std::size_t>(size);

  MappedModel m;
  std::string stripped;
  m.proto_ = std::make_unique<onnx::ModelProto>();
  if (!strip_raw_data(mapping->data, mapping->data, mapping->data + mapping->size, Level::kModel, stripped,
                      m.raw_ranges_) ||
      !m.proto_->ParseFromString(stripped) || !m.proto_->has_graph() ||
      m.raw_ranges_.size() != static_cast<std::size_t>(m.proto_->graph().initializer_size()))
    return invalid_input(path + ": not a valid ONNX model");
  m.mapping_ = std::move(mapping);
  return m;
}

MappedModel::~MappedModel() = default;
MappedModel::MappedModel(MappedModel&&) noexcept = default;
MappedModel& MappedModel::operator=(MappedModel&&) noexcept = default;

std::optional<std::span<const std::byte>> MappedModel::raw_data(int initializer) const {
  const Range& r = raw_ranges_.at(static_cast<std::size_t>(initializer));
  if (!r.present) return std::nullopt;
  return std::span<const std::byte>(reinterpret_cast<const std::byte*>(mapping_->data) + r.offset, r.length);
}

}  // namespace fswap
