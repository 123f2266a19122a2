// The CUDA backend's functions for a build without the CUDA toolkit: available() is false and
// everything else explains why it cannot run.
#include "backend/cuda/cuda.hpp"
#include "backend/cuda/lut_gemm.hpp"
#include "core/error.hpp"

namespace ik::backend::cuda {

[[noreturn]] static void no_cuda() {
  fail("this inferkit was built without CUDA (install the CUDA toolkit and rebuild to use --device cuda)");
}

bool available() { return false; }
DeviceInfo init(int) { no_cuda(); }
void* alloc(size_t, const char*) { no_cuda(); }
void release(void*) {}
void upload(void*, const void*, size_t) { no_cuda(); }
void download(void*, const void*, size_t) { no_cuda(); }
void copy_async(void*, const void*, size_t) { no_cuda(); }
void* alloc_pinned(size_t) { no_cuda(); }
void release_pinned(void*) {}
void poison(void*, size_t) { no_cuda(); }
void sync() { no_cuda(); }
void fill_uniform_bf16(bf16*, size_t, uint64_t, float) { no_cuda(); }
void fill_f32(float*, size_t, float) { no_cuda(); }
void fill_uniform_bf16_block(bf16*, int, int, uint64_t, float, int64_t, int64_t, int64_t) { no_cuda(); }
void add_inplace(float*, const float*, size_t) { no_cuda(); }
void top_k_rows(const float*, int, int, int, int32_t*) { no_cuda(); }
void bias_silu_add(const float*, const float*, float*, int, int) { no_cuda(); }
void hydra_input(const float*, const bf16*, const int32_t*, const int32_t*, int, int, int, float*) { no_cuda(); }
void scatter_candidates(const int32_t*, int, const int32_t*, int, int32_t*) { no_cuda(); }
void keep_cache_rows(bf16* const*, int, int, const int32_t*, int, int) { no_cuda(); }
void convert_to_bf16(const float*, bf16*, size_t) { no_cuda(); }
void convert_to_f32(const bf16*, float*, size_t) { no_cuda(); }
void copy_2d_async(void*, size_t, const void*, size_t, size_t, size_t) { no_cuda(); }
void* main_stream() { no_cuda(); }
void* side_stream() { no_cuda(); }
Event create_event() { no_cuda(); }
void destroy_event(Event&) {}
void record(Event, void*) { no_cuda(); }
void wait(void*, Event) { no_cuda(); }
void begin_capture() { no_cuda(); }
Graph end_capture() { no_cuda(); }
void launch(const Graph&) { no_cuda(); }
void destroy(Graph&) {}
double measure_copy_bandwidth(size_t) { no_cuda(); }
double time_ms(const std::function<void()>&, int) { no_cuda(); }
void embed(const bf16*, const int32_t*, int, int, float*) { no_cuda(); }
void rms_norm(const float*, const float*, bf16*, int, int, float, float*, int, int) { no_cuda(); }
void matmul(const bf16*, const bf16*, float*, int, int, int, bool, int) { no_cuda(); }
bool matvec_fits(const bf16*, const bf16*, int, int, int) { return false; }
void matvec(const bf16*, const bf16*, float*, int, int, int, bool, int) { no_cuda(); }
bool stream_matvec_fits(const bf16*, const bf16*, int, int, int) { return false; }
void stream_matvec(const bf16*, const bf16*, float*, int, int, int, bool, int) { no_cuda(); }
bool matvec_streams(const bf16*, const bf16*, int, int, int) { return false; }
bool matvec_rms_norm_fits(const float*, const float*, const bf16*, int, int, int) { return false; }
void matvec_rms_norm(const float*, const float*, float, const bf16*, float*, int, int, int, bool, int) { no_cuda(); }
void matmul_cublas(const bf16*, const bf16*, float*, int, int, int, bool, int) { no_cuda(); }
void matmul_f16(const uint16_t*, const uint16_t*, uint16_t*, int, int, int) { no_cuda(); }
void rope_and_store_kv(float*, int, int, int, int, const int32_t*, const int32_t*, const int32_t*, const float*, bool,
                       bf16*, bf16*, int) {
  no_cuda();
}
void silu_mul(const float*, bf16*, int, int) { no_cuda(); }
void attention_prefill(const float*, int, const bf16*, const bf16*, bf16*, int, int, int, int, int, const uint8_t*,
                       int, const int32_t*, float*) {
  no_cuda();
}
void attention_decode(const float*, int, const bf16*, const bf16*, bf16*, int, const int32_t*, int, int, int, int,
                      float*, bool) {
  no_cuda();
}
bool decode_tensor_cores(int, int64_t) { return false; }
void rope_store_attention_decode(float*, int, bf16*, bf16*, bf16*, int, const int32_t*, int, int, int, int, float*,
                                 const float*, bool, bool) {
  no_cuda();
}
void attention_block(const float*, int, const bf16*, const bf16*, int, int, int, int, int, int, float*, float*) {
  no_cuda();
}
void attention_merge(float*, float*, const float*, const float*, int, int, int) { no_cuda(); }
size_t attention_decode_scratch_floats(int, int, int) { return 0; }
int tree_decode_max_rows() { return 0; }
void rope_store_attention_tree(float*, int, bf16*, bf16*, bf16*, int, const int32_t*, const int32_t*, const uint8_t*,
                               int, int, int, float*, const float*, bool) {
  no_cuda();
}
void increment(int32_t*, int, int) { no_cuda(); }
void argmax_rows(const float*, int, int, int32_t*) { no_cuda(); }
void sample(const float*, int, int, SamplingParams*, int32_t*) { no_cuda(); }
LutMatrix upload_lut(const LutPacked&) { no_cuda(); }
LutMatrix random_lut(int, int, int, int, const std::vector<float>&, uint64_t, float) { no_cuda(); }
void free_lut(LutMatrix&) {}
size_t lut_smem_bytes(int, int, int, const LutKernelConfig&) { return 0; }
void lut_matmul(const void*, bool, const LutMatrix&, float*, int, int, bool, const LutKernelConfig*) { no_cuda(); }
void lut_dequantize(const LutMatrix&, uint16_t*, bool) { no_cuda(); }

}  // namespace ik::backend::cuda
