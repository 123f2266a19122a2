// libFuzzer target: arbitrary bytes through the GGUF reader. Any ik::Error is a correct answer;
// a crash, hang, sanitizer report or other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ik::io::GgufFile f = ik::io::GgufFile::parse(data, size, "fuzz.gguf");
    size_t chars = 0;
    for (const std::string& key : f.metadata_order()) chars += f.get(key).to_display().size();
    std::vector<float> row;
    for (const ik::io::GgufTensorInfo& t : f.tensors()) {
      const ik::io::DTypeTraits& tr = ik::io::dtype_traits(t.type);
      if (!tr.supported) continue;
      // At most the first two rows, and no more than 4096 elements of each.
      const int64_t n = std::min<int64_t>(t.row_len(), 4096) / tr.block_size * tr.block_size;
      row.resize(size_t(n));
      for (int64_t r = 0; r < std::min<int64_t>(t.rows(), 2); ++r)
        ik::io::dequantize(t.type, t.row_data(r), row.data(), n);
    }
    (void)chars;
  } catch (const ik::Error&) {
  }
  return 0;
}
