#include "core/npy.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace fswap {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "<f4";
    case DType::kFloat64: return "<f8";
    case DType::kFloat16: return "<f2";
    case DType::kInt64: return "<i8";
    case DType::kInt32: return "<i4";
    case DType::kInt8: return "|i1";
    case DType::kUInt8: return "|u1";
    case DType::kBool: return "|b1";
  }
  return "?";
}

Result<DType> dtype_of(const std::string& descr) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt64, DType::kInt32, DType::kInt8,
                  DType::kUInt8, DType::kBool})
    if (descr == descr_of(d)) return d;
  return unsupported("numpy dtype '" + descr + "'");
}

// The quoted value after 'key': in the header dict, or the raw text up to the next ',' or '}'.
std::string header_field(const std::string& header, const std::string& key) {
  const auto at = header.find("'" + key + "'");
  if (at == std::string::npos) return {};
  auto p = header.find(':', at);
  if (p == std::string::npos) return {};
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p < header.size() && header[p] == '\'') {
    const auto end = header.find('\'', p + 1);
    return end == std::string::npos ? std::string{} : header.substr(p + 1, end - p - 1);
  }
  if (p < header.size() && header[p] == '(') {
    const auto end = header.find(')', p);
    return end == std::string::npos ? std::string{} : header.substr(p, end - p + 1);
  }
  const auto end = header.find_first_of(",}", p);
  return header.substr(p, end == std::string::npos ? std::string::npos : end - p);
}

}  // namespace

Result<Tensor> read_npy(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found(path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  char magic[6];
  unsigned char version[2];
  if (!in.read(magic, 6) || std::memcmp(magic, kMagic, 6) != 0 || !in.read(reinterpret_cast<char*>(version), 2))
    return invalid_input(path + ": not a .npy file");
  std::uint32_t header_len = 0;
  if (version[0] == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) return invalid_input(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) return invalid_input(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  }
  if (header_len > (1u << 20)) return invalid_input(path + ": .npy header too large");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) return invalid_input(path + ": truncated .npy header");
  FSWAP_ASSIGN_OR_RETURN(DType dtype, dtype_of(header_field(header, "descr")));
  if (header_field(header, "fortran_order").find("True") != std::string::npos)
    return unsupported(path + ": Fortran-ordered arrays (save with np.ascontiguousarray)");
  Shape shape;
  const std::string dims = header_field(header, "shape");
  for (std::size_t p = 0; p < dims.size();) {
    if (std::isdigit(static_cast<unsigned char>(dims[p]))) {
      std::size_t used = 0;
      shape.push_back(std::stoll(dims.substr(p), &used));
      p += used;
    } else {
      ++p;
    }
  }
  Tensor t = Tensor::zeros(dtype, shape);
  if (!in.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(t.bytes())))
    return invalid_input(path + ": truncated data (" + shape_to_string(shape) + " " + dtype_name(dtype) + ")");
  return t;
}

Status write_npy(const std::string& path, const Tensor& tensor) {
  std::string dims = "(";
  for (std::size_t i = 0; i < tensor.shape().size(); ++i) dims += std::to_string(tensor.shape()[i]) + ",";
  if (tensor.shape().size() > 1) dims.pop_back();
  dims += ")";
  std::string header = std::string("{'descr': '") + descr_of(tensor.dtype()) + "', 'fortran_order': False, 'shape': " + dims + ", }";
  // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64.
  const std::size_t total = 6 + 2 + 2 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return invalid_input(path + ": cannot create the file");
  const unsigned char version[2] = {1, 0};
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff), static_cast<unsigned char>(header.size() >> 8)};
  out.write(kMagic, 6);
  out.write(reinterpret_cast<const char*>(version), 2);
  out.write(reinterpret_cast<const char*>(len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(tensor.raw()), static_cast<std::streamsize>(tensor.bytes()));
  if (!out) return internal_error(path + ": write failed");
  return Status::ok();
}

}  // namespace fswap
