// libFuzzer target: arbitrary bytes through the safetensors reader; ik::Error is fine.
#include <cstddef>
#include <cstdint>

#include "core/error.hpp"
#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ik::io::SafetensorsFile f = ik::io::SafetensorsFile::parse(data, size, "fuzz.safetensors");
    float sum = 0;
    for (const ik::io::SafeTensor& t : f.tensors()) {
      if (t.type != ik::io::DType::F32 && t.type != ik::io::DType::F16 && t.type != ik::io::DType::BF16)
        continue;
      for (float x : ik::io::SafetensorsFile::to_f32(t)) sum += x;
    }
    (void)sum;
  } catch (const ik::Error&) {
  }
  return 0;
}
