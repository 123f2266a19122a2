#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/mmap.hpp"
#include "core/rng.hpp"

TEST(Rng, SameSeedSameStream) {
  ik::Rng a(42, 1), b(42, 1), c(42, 2);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
}

TEST(Rng, UniformAndNormalMoments) {
  ik::Rng r(7);
  double s = 0, s2 = 0, n1 = 0, n2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    s += u;
    s2 += u * u;
    double z = r.normal();
    n1 += z;
    n2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.5, 0.005);
  EXPECT_NEAR(s2 / n - 0.25, 1.0 / 12, 0.002);
  EXPECT_NEAR(n1 / n, 0.0, 0.01);
  EXPECT_NEAR(n2 / n, 1.0, 0.01);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(r.below(7), 7u);
}

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = ik::fp16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(ik::f32_to_fp16(f), h) << h;
  }
  EXPECT_EQ(ik::fp16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(ik::fp16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(ik::f32_to_fp16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(ik::bf16_to_f32(ik::f32_to_bf16(1.5f)), 1.5f);
}

TEST(MappedFile, MissingFileNamesPath) {
  try {
    ik::MappedFile f("/nonexistent/model.gguf");
    FAIL() << "no throw";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

TEST(MappedFile, MapsContents) {
  std::string path = ::testing::TempDir() + "/ik_mmap_test.bin";
  { std::ofstream(path) << "hello"; }
  ik::MappedFile f(path);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data()), 5), "hello");
  std::remove(path.c_str());
}
