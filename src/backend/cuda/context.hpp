#pragma once
// The host side shared by the CUDA sources: the per-process context and error checks.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <string>

#include "backend/cuda/cuda.hpp"

namespace ik::backend::cuda {

struct Context {
  bool ready = false;
  int ordinal = 0;
  DeviceInfo device;
  cudaStream_t stream = nullptr;
  cudaStream_t side = nullptr;  // side_stream(), created on first use
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;
  size_t cublas_workspace_bytes = 0;
};

Context& ctx();
void check(cudaError_t e, const char* what);
void check_launch(const char* kernel);  // throws on a launch error (bad configuration)
void check_cublas(cublasStatus_t s, const char* what);
// Chained (programmatic dependent) launches, see common.cuh: on for sm_90 and newer unless
// IK_NO_PDL is set (to measure what they gain).
bool chained_launches_enabled();
// IK_NO_DECODE_FUSION=1 (or =rope, =norm: one of them): the decode step's fused kernels (RoPE +
// KV store in attention, RMSNorm in matvec) fall back to separate launches, for comparisons
// (bench/cuda/decode_variants.sh). which: "rope" or "norm".
bool decode_fusion_off(const char* which);
// An integer setting from the environment for comparisons (IK_DECODE_SPLITS, ...): fallback
// when unset or not a number.
int env_setting(const char* name, int fallback);
// Throws ik::Error (defined in device.cpp: nvcc cannot compile fmt's checked format strings).
[[noreturn]] void raise(const std::string& message);

}  // namespace ik::backend::cuda
