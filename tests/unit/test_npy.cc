#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/npy.h"
#include "support/scratch_dir.h"

namespace fswap {
namespace {

TEST(Npy, RoundTripsEveryDtype) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt64, DType::kInt32, DType::kInt8,
                      DType::kUInt8, DType::kBool}) {
    Tensor t = Tensor::zeros(dtype, {2, 3, 5});
    for (std::size_t i = 0; i < t.bytes(); ++i) static_cast<std::uint8_t*>(t.raw())[i] = static_cast<std::uint8_t>(i % 2);
    const std::string path = test::scratch_path("npy", std::string("t_") + dtype_name(dtype) + ".npy");
    ASSERT_TRUE(write_npy(path, t).is_ok());
    auto back = read_npy(path);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->dtype(), dtype);
    EXPECT_EQ(back->shape(), t.shape());
    EXPECT_EQ(std::memcmp(back->raw(), t.raw(), t.bytes()), 0);
  }
}

TEST(Npy, ScalarsAndVectors) {
  for (Shape shape : {Shape{}, Shape{7}}) {
    Tensor t = Tensor::zeros(DType::kFloat32, shape);
    const std::string path = test::scratch_path("npy", "s.npy");
    ASSERT_TRUE(write_npy(path, t).is_ok());
    auto back = read_npy(path);
    ASSERT_TRUE(back.is_ok());
    EXPECT_EQ(back->shape(), shape);
  }
}

TEST(Npy, BadFilesAreClearErrors) {
  EXPECT_EQ(read_npy("/nonexistent.npy").status().code(), StatusCode::kNotFound);
  const std::string text = test::scratch_path("npy", "text.npy");
  std::ofstream(text) << "hello";
  EXPECT_EQ(read_npy(text).status().code(), StatusCode::kInvalidInput);
  // Truncated data.
  Tensor t = Tensor::zeros(DType::kFloat32, {100});
  const std::string cut = test::scratch_path("npy", "cut.npy");
  ASSERT_TRUE(write_npy(cut, t).is_ok());
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) - 8);
  const auto r = read_npy(cut);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find(cut), std::string::npos);
}

}  // namespace
}  // namespace fswap
