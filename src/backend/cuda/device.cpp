// Device selection, memory, the stream, cuBLAS, graphs and timers: the host side of the CUDA
// backend, compiled by the C++ compiler (kernels are in the .cu files).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/context.hpp"
#include "core/error.hpp"

namespace ik::backend::cuda {

Context& ctx() {
  static Context c;
  return c;
}

// A failed call also leaves its error as the runtime's "last error"; reset it (where it is not
// sticky), or the next kernel's check_launch would report it as its own.
void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  fail("CUDA error in {}: {}", what, cudaGetErrorString(e));
}

void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS error in {}: status {}", what, int(s));
}

void raise(const std::string& message) { fail("{}", message); }

bool chained_launches_enabled() {
  static const bool off = std::getenv("IK_NO_PDL") != nullptr;
  return !off && ctx().device.cc_major >= 9;
}

bool decode_fusion_off(const char* which) {
  static const char* env = std::getenv("IK_NO_DECODE_FUSION");
  return env && (std::strcmp(env, "1") == 0 || std::strcmp(env, which) == 0);
}

int env_setting(const char* name, int fallback) {
  const char* e = std::getenv(name);
  if (!e || !*e) return fallback;
  char* end = nullptr;
  const long v = std::strtol(e, &end, 10);
  return *end == '\0' && v >= INT_MIN && v <= INT_MAX ? int(v) : fallback;
}

bool available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return false;
  }
  return n > 0;
}

static DeviceInfo query(int ordinal) {
  DeviceInfo d;
  d.ordinal = ordinal;
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, ordinal), "cudaGetDeviceProperties");
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  cudaMemGetInfo(&d.free_bytes, &d.total_bytes);
  cudaDriverGetVersion(&d.driver_version);
  cudaRuntimeGetVersion(&d.runtime_version);
  return d;
}

DeviceInfo init(int ordinal) {
  Context& c = ctx();
  if (c.ready) {
    IK_CHECK(ordinal == c.ordinal, "CUDA is already set up on device {}, not {}", c.ordinal, ordinal);
    check(cudaSetDevice(ordinal), "cudaSetDevice");  // the device is per host thread (a server's worker)
    return query(ordinal);
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (driver == 0 || e == cudaErrorNoDevice) {
    cudaGetLastError();
    fail("no CUDA GPU found (no NVIDIA driver or no device on this machine)");
  }
  if (e == cudaErrorInsufficientDriver)
    fail("the NVIDIA driver is too old for this build: driver supports CUDA {}.{}, inferkit needs {}.{}",
         driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    fail("no CUDA GPU found ({})", e == cudaSuccess ? "no devices" : cudaGetErrorString(e));
  }
  IK_CHECK(ordinal >= 0 && ordinal < n, "CUDA device {} does not exist ({} found)", ordinal, n);
  check(cudaSetDevice(ordinal), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_cublas(cublasCreate(&c.cublas), "cublasCreate");
  check_cublas(cublasSetStream(c.cublas, c.stream), "cublasSetStream");
  // A fixed workspace, so cuBLAS allocates nothing while a graph is being captured.
  c.cublas_workspace_bytes = 32u << 20;
  check(cudaMalloc(&c.cublas_workspace, c.cublas_workspace_bytes), "cudaMalloc(cuBLAS workspace)");
  check_cublas(cublasSetWorkspace(c.cublas, c.cublas_workspace, c.cublas_workspace_bytes), "cublasSetWorkspace");
  check_cublas(cublasSetMathMode(c.cublas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  c.ordinal = ordinal;
  c.ready = true;
  c.device = query(ordinal);
  return c.device;
}

// ---- memory -------------------------------------------------------------------------------

void* alloc(size_t bytes, const char* what) {
  IK_CHECK(ctx().ready, "CUDA is not initialised");
  void* p = nullptr;
  if (bytes == 0) bytes = 1;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("out of device memory on {}: {} needs {} MiB, {} MiB free of {} MiB", ctx().device.name, what,
         bytes >> 20, free_b >> 20, total_b >> 20);
  }
  return p;
}

void release(void* p) {
  if (p) cudaFree(p);
}

void upload(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx().stream), "upload");
  check(cudaStreamSynchronize(ctx().stream), "upload");
}

void download(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx().stream), "download");
  check(cudaStreamSynchronize(ctx().stream), "download");
}

void copy_async(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ctx().stream), "copy");
}

void* alloc_pinned(size_t bytes) {
  void* p = nullptr;
  check(cudaMallocHost(&p, bytes), "cudaMallocHost");
  return p;
}

void release_pinned(void* p) {
  if (p) cudaFreeHost(p);
}

void poison(void* p, size_t bytes) { check(cudaMemsetAsync(p, 0xFF, bytes, ctx().stream), "poison"); }

void sync() { check(cudaStreamSynchronize(ctx().stream), "kernel execution"); }

void copy_2d_async(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height) {
  check(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDefault, ctx().stream), "copy_2d");
}

// ---- streams ------------------------------------------------------------------------------

void* main_stream() { return ctx().stream; }

void* side_stream() {
  Context& c = ctx();
  IK_CHECK(c.ready, "CUDA is not initialised");
  if (!c.side) check(cudaStreamCreateWithFlags(&c.side, cudaStreamNonBlocking), "cudaStreamCreate (side)");
  return c.side;
}

Event create_event() {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  return Event{e};
}

void destroy_event(Event& e) {
  if (e.handle) cudaEventDestroy(cudaEvent_t(e.handle));
  e.handle = nullptr;
}

void record(Event e, void* stream) { check(cudaEventRecord(cudaEvent_t(e.handle), cudaStream_t(stream)), "cudaEventRecord"); }

void wait(void* stream, Event e) {
  check(cudaStreamWaitEvent(cudaStream_t(stream), cudaEvent_t(e.handle), 0), "cudaStreamWaitEvent");
}

// ---- graphs and timers --------------------------------------------------------------------

void begin_capture() {
  check(cudaStreamBeginCapture(ctx().stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
}

Graph end_capture() {
  cudaGraph_t g = nullptr;
  check(cudaStreamEndCapture(ctx().stream, &g), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  check(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
  cudaGraphDestroy(g);
  return Graph{exec};
}

void launch(const Graph& g) { check(cudaGraphLaunch(cudaGraphExec_t(g.exec), ctx().stream), "cudaGraphLaunch"); }

void destroy(Graph& g) {
  if (g.exec) cudaGraphExecDestroy(cudaGraphExec_t(g.exec));
  g.exec = nullptr;
}

// Device time between two points on the stream (events), for the bandwidth probe.
struct Timer {
  cudaEvent_t start = nullptr, stop = nullptr;
};

static Timer timer_start() {
  Timer t;
  check(cudaEventCreate(&t.start), "cudaEventCreate");
  check(cudaEventCreate(&t.stop), "cudaEventCreate");
  check(cudaEventRecord(t.start, ctx().stream), "cudaEventRecord");
  return t;
}

static double timer_stop_ms(Timer& t) {
  cudaEvent_t a = t.start, b = t.stop;
  check(cudaEventRecord(b, ctx().stream), "cudaEventRecord");
  check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  t = {};
  return ms;
}

double measure_copy_bandwidth(size_t bytes) {
  void* a = alloc(bytes, "the bandwidth probe");
  void* b = alloc(bytes, "the bandwidth probe");
  double best_ms = 1e30;
  for (int rep = 0; rep < 6; ++rep) {
    Timer t = timer_start();
    check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, ctx().stream), "bandwidth probe");
    const double ms = timer_stop_ms(t);
    if (rep > 0) best_ms = std::min(best_ms, ms);  // the first run warms up
  }
  release(a);
  release(b);
  return 2.0 * double(bytes) / (best_ms * 1e-3);
}

double time_ms(const std::function<void()>& queue, int reps) {
  begin_capture();
  queue();
  Graph g = end_capture();
  launch(g);  // warm up
  Timer t = timer_start();
  for (int i = 0; i < reps; ++i) launch(g);
  const double ms = timer_stop_ms(t);
  destroy(g);
  return ms / reps;
}

// ---- matmul -------------------------------------------------------------------------------

void matmul(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy) {
  // Row-major y[m,n] = x[m,k] W[n,k]^T is column-major y^T[n,m] = W^T... : C = op(A) B with
  // A = W viewed column-major [k, n] transposed, B = x viewed column-major [k, m].
  if (matvec_fits(x, w, m, n, k)) return matvec(x, w, y, m, n, k, accumulate, ldy ? ldy : n);
  matmul_cublas(x, w, y, m, n, k, accumulate, ldy);
}

void matmul_cublas(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy) {
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  check_cublas(cublasGemmEx(ctx().cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, CUDA_R_16BF, k, x,
                            CUDA_R_16BF, k, &beta, y, CUDA_R_32F, ldy ? ldy : n, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
  cudaGetLastError();  // cuBLAS reports through its status; drop what its internal probes leave behind
}

void matmul_f16(const uint16_t* x, const uint16_t* w, uint16_t* y, int m, int n, int k) {
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(cublasGemmEx(ctx().cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, CUDA_R_16F, k, x, CUDA_R_16F,
                            k, &beta, y, CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx (f16)");
  cudaGetLastError();
}

}  // namespace ik::backend::cuda
