// NumPy .npy files (format version 1.0/2.0, little-endian, C order) for tensors: what
// `fswap model run` reads as inputs and writes as outputs.
//
//   FSWAP_ASSIGN_OR_RETURN(Tensor t, read_npy("input.npy"));
//   FSWAP_RETURN_IF_ERROR(write_npy("out/scores.npy", t));
#pragma once

#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace fswap {

// dtypes: <f4 <f8 <f2 <i8 <i4 |i1 |u1 |b1. Fortran order and big-endian are kUnsupported;
// a missing file kNotFound; a malformed or truncated one kInvalidInput naming the file.
Result<Tensor> read_npy(const std::string& path);
Status write_npy(const std::string& path, const Tensor& tensor);

}  // namespace fswap
