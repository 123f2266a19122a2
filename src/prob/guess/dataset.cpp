#include "prob/guess/dataset.hpp"

#include <zlib.h>

#include <cstdint>
#include <filesystem>

#include "core/error.hpp"

namespace ik::guess {

// The whole file; gzopen reads plain and gzipped files alike.
static std::vector<uint8_t> read_maybe_gzipped(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  IK_CHECK(file != nullptr, "cannot open '{}'", path);
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(file, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool failed = n < 0;
  gzclose(file);
  IK_CHECK(!failed, "'{}' is not a valid gzip or IDX file", path);
  return bytes;
}

static uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
}

// "<dir>/<stem>" or "<dir>/<stem>.gz", whichever exists.
static std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"})
    if (std::filesystem::exists(dir + "/" + name)) return dir + "/" + name;
  fail("Fashion-MNIST file '{}/{}[.gz]' not found: install the Debian package dataset-fashion-mnist "
       "(apt-get install dataset-fashion-mnist) or pass --data DIR",
       dir, stem);
}

Dataset load_fashion_mnist(const std::string& dir, const std::string& split, int limit) {
  IK_CHECK(split == "train" || split == "t10k", "unknown Fashion-MNIST split '{}' (train or t10k)", split);
  const std::string image_path = find_idx(dir, split + "-images-idx3-ubyte");
  const std::string label_path = find_idx(dir, split + "-labels-idx1-ubyte");
  const std::vector<uint8_t> images = read_maybe_gzipped(image_path);
  const std::vector<uint8_t> labels = read_maybe_gzipped(label_path);
  IK_CHECK(images.size() >= 16 && be32(images, 0) == 0x803, "'{}' is not an IDX image file", image_path);
  IK_CHECK(labels.size() >= 8 && be32(labels, 0) == 0x801, "'{}' is not an IDX label file", label_path);
  const uint32_t count = be32(images, 4), rows = be32(images, 8), cols = be32(images, 12);
  IK_CHECK(be32(labels, 4) == count, "'{}' has {} labels for {} images", label_path, be32(labels, 4), count);
  IK_CHECK(images.size() == 16 + size_t(count) * rows * cols, "'{}' is truncated", image_path);
  IK_CHECK(labels.size() == 8 + size_t(count), "'{}' is truncated", label_path);

  Dataset d;
  d.count = limit > 0 ? std::min<int>(limit, count) : int(count);
  d.dim = int(rows * cols);
  d.classes = 10;
  d.x.resize(size_t(d.count) * d.dim);
  for (size_t j = 0; j < d.x.size(); ++j) d.x[j] = images[16 + j] / 255.0f;
  d.y.resize(d.count);
  for (int j = 0; j < d.count; ++j) {
    d.y[j] = labels[8 + j];
    IK_CHECK(d.y[j] < d.classes, "'{}': label {} at {} out of range", label_path, d.y[j], j);
  }
  return d;
}

}  // namespace ik::guess
