// Budget parsing (--vram-budget) and byte formatting.
#include <gtest/gtest.h>

#include "memory/budget.h"

using namespace fswap;
using namespace fswap::memory;

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::uint64_t kMiB = 1ull << 20;
const DeviceMemoryInfo kH100{80 * kGiB, 79 * kGiB};

std::uint64_t parse(const char* text) {
  Result<Budget> b = parse_budget(text, kH100);
  EXPECT_TRUE(b.is_ok()) << text << ": " << b.status().to_string();
  return b.is_ok() ? b->bytes : 0;
}

TEST(MemoryBudget, BinaryAndDecimalUnits) {
  EXPECT_EQ(parse("512MiB"), 512 * kMiB);
  EXPECT_EQ(parse("4GiB"), 4 * kGiB);
  EXPECT_EQ(parse("4G"), 4 * kGiB);
  EXPECT_EQ(parse("4gib"), 4 * kGiB);
  EXPECT_EQ(parse(" 4 GiB "), 4 * kGiB);
  EXPECT_EQ(parse("64KiB"), 64 * 1024ull);
  EXPECT_EQ(parse("1.5GB"), 1500000000ull);
  EXPECT_EQ(parse("800MB"), 800000000ull);
  EXPECT_EQ(parse("1.5GiB"), 3 * kGiB / 2);
  EXPECT_EQ(parse("1048576"), kMiB);
  EXPECT_EQ(parse("1048576B"), kMiB);
}

TEST(MemoryBudget, PercentOfTotal) {
  EXPECT_EQ(parse("80%"), 64 * kGiB);
  EXPECT_EQ(parse("100%"), 80 * kGiB);
  EXPECT_EQ(parse("2.5%"), 2 * kGiB);
}

TEST(MemoryBudget, DefaultIsFreeMinusMargin) {
  // 3% of 80 GiB = 2.4 GiB margin.
  Result<Budget> b = parse_budget("", kH100);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->bytes, 79 * kGiB - default_margin_bytes(80 * kGiB));
  EXPECT_EQ(default_margin_bytes(80 * kGiB), 80 * kGiB / 100 * 3);
  EXPECT_EQ(parse("default"), b->bytes);
  EXPECT_EQ(parse("auto"), b->bytes);
  // A 12 GB card: the 512 MiB floor.
  EXPECT_EQ(default_margin_bytes(12 * kGiB), 512 * kMiB);
  Result<Budget> small = parse_budget("default", {12 * kGiB, 11 * kGiB});
  ASSERT_TRUE(small.is_ok());
  EXPECT_EQ(small->bytes, 11 * kGiB - 512 * kMiB);
  // Nothing left after the margin: a clear out-of-memory, not a zero budget.
  EXPECT_EQ(parse_budget("default", {12 * kGiB, 100 * kMiB}).status().code(), StatusCode::kOutOfMemory);
}

TEST(MemoryBudget, AboveFreeWarns) {
  Result<Budget> b = parse_budget("79.5GiB", kH100);
  ASSERT_TRUE(b.is_ok());
  EXPECT_FALSE(b->warning.empty());
  EXPECT_TRUE(parse_budget("4GiB", kH100)->warning.empty());
}

TEST(MemoryBudget, BadStringsAreInvalidInput) {
  for (const char* bad : {"abc", "GiB", "4XB", "4 Gibibytes", "-1GiB", "0", "0GiB", "0%", "101%", "-5%", "1.2.3GiB",
                          "4GiB extra", ".", "1.5", "1.5B", "81GiB", "1e3MiB", "nan", "%"}) {
    Result<Budget> b = parse_budget(bad, kH100);
    EXPECT_FALSE(b.is_ok()) << bad;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidInput) << bad;
    EXPECT_NE(b.status().message().find("--vram-budget"), std::string::npos) << b.status().message();
  }
}

TEST(MemoryBudget, FormatBytes) {
  EXPECT_EQ(format_bytes(100), "100 B");
  EXPECT_EQ(format_bytes(12 * 1024), "12 KiB");
  EXPECT_EQ(format_bytes(512 * kMiB), "512 MiB");
  EXPECT_EQ(format_bytes(3 * kGiB / 2), "1.50 GiB");
  EXPECT_EQ(format_bytes(80 * kGiB), "80 GiB");
}

}  // namespace
