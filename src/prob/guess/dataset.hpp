#pragma once
// Image classification data held in memory: Fashion-MNIST read in place from the Debian
// package dataset-fashion-mnist (IDX files, gzipped or not), pixels scaled to [0, 1].
#include <string>
#include <vector>

namespace ik::guess {

struct Dataset {
  int count = 0;
  int dim = 0;
  int classes = 0;
  std::vector<float> x;  // [count x dim]
  std::vector<int> y;    // [count]
};

// Where the Debian package puts the files.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// split: "train" (60000 images) or "t10k" (10000). limit > 0 keeps the first `limit` images.
// Missing files: an ik::Error naming the Debian package that provides them.
Dataset load_fashion_mnist(const std::string& dir, const std::string& split, int limit = 0);

}  // namespace ik::guess
