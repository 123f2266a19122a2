// libFuzzer target: arbitrary bytes as a tuned-configuration table (IK_LUT_TUNED=FILE, the format
// of src/backend/cuda/lut_tuned.inc); ik::Error is fine.
#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/cuda/lut_gemm.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto entries =
        ik::backend::cuda::parse_lut_tuned(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    (void)entries.size();
  } catch (const ik::Error&) {
  }
  return 0;
}
