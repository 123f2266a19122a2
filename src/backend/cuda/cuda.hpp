#pragma once
// The CUDA backend: every operation the Llama forward pass needs, on device memory, as plain
// host functions (this header includes no CUDA headers, so the model code compiles without
// the toolkit). Built from the .cu files beside it when nvcc is found; otherwise no_cuda.cpp
// provides the same functions, each throwing "built without CUDA".
//
// One device per process (multi-GPU work runs one process per GPU). Every operation is
// queued on the context's stream and returns at once; download() and sync() wait.
// Storage: weights and the KV cache in bf16, the residual stream and logits in f32,
// matmul inputs in bf16 (cuBLAS, fp32 accumulation).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ik::backend::cuda {

using bf16 = uint16_t;  // bf16 as seen from the host (bit pattern)

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0, sm_count = 0;
  size_t total_bytes = 0, free_bytes = 0;
  int driver_version = 0, runtime_version = 0;
};

// A usable GPU exists (driver loaded, at least one device). Never throws.
bool available();
// Select the device for this process and create the stream and cuBLAS handle. Throws a
// one-line error for no GPU, a driver older than the runtime, or a bad ordinal.
DeviceInfo init(int ordinal = 0);

// ---- memory -------------------------------------------------------------------------------
// Throws "out of device memory on <name>: <what> needs X MiB, Y MiB free".
void* alloc(size_t bytes, const char* what);
void release(void* p);
void upload(void* dst, const void* src, size_t bytes);    // host -> device, waits
void download(void* dst, const void* src, size_t bytes);  // device -> host, waits
void copy_async(void* dst, const void* src, size_t bytes);  // any direction, on the stream
void* alloc_pinned(size_t bytes);  // page-locked host memory (graph-capturable copies)
void release_pinned(void* p);
void poison(void* p, size_t bytes);  // 0xFF bytes: NaN in f32 and bf16
// n values of T in device memory, released at scope end (alloc's out-of-memory error applies).
template <class T>
class DeviceArray {
 public:
  DeviceArray(size_t n, const char* what) : p_(static_cast<T*>(alloc(n * sizeof(T), what))), n_(n) {}
  // A device copy of host values.
  DeviceArray(const T* host, size_t n, const char* what) : DeviceArray(n, what) { upload(p_, host, n * sizeof(T)); }
  ~DeviceArray() { release(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_;
  size_t n_;
};

// Device allocations released together when their owner goes (a model's or a drafter's buffers).
class DevicePool {
 public:
  DevicePool() = default;
  ~DevicePool() {
    for (void* p : blocks_) release(p);  // release(nullptr) is a no-op
  }
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;
  void* allocate(size_t bytes, const char* what) {
    blocks_.push_back(nullptr);  // the slot first: once alloc succeeds nothing can throw
    blocks_.back() = alloc(bytes, what);
    return blocks_.back();
  }

 private:
  std::vector<void*> blocks_;
};
void sync();
// Seeded uniform values in [-scale, scale] (a counter-based hash: same seed, same values,
// independent of the launch shape), or a constant.
void fill_uniform_bf16(bf16* dst, size_t n, uint64_t seed, float scale);
void fill_f32(float* dst, size_t n, float value);
// The block [row0, row0 + rows) x [col0, col0 + cols) of what fill_uniform_bf16 writes into a
// matrix of row stride ld, stored densely (rows x cols): shards of one seeded matrix.
void fill_uniform_bf16_block(bf16* dst, int rows, int cols, uint64_t seed, float scale, int64_t row0, int64_t col0,
                             int64_t ld);
// x[i] += y[i].
void add_inplace(float* x, const float* y, size_t n);
// y[i] = bf16(x[i]), and back.
void convert_to_bf16(const float* x, bf16* y, size_t n);
void convert_to_f32(const bf16* x, float* y, size_t n);
// dst rows of `width` bytes, dpitch apart, from src rows spitch apart (on the stream).
void copy_2d_async(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height);

// ---- streams ------------------------------------------------------------------------------
// The main stream (every operation above) and a side stream for work that overlaps it (the
// all-reduces of Ladder Residual). Events order the two; both are legal inside a graph capture
// of the main stream (the side stream joins the capture through an event).
struct Event {
  void* handle = nullptr;
};
void* main_stream();  // cudaStream_t
void* side_stream();  // cudaStream_t, created on first use
Event create_event();
void destroy_event(Event& e);
void record(Event e, void* stream);
void wait(void* stream, Event e);  // work queued on stream after this waits for e

// ---- graphs ------------------------------------------------------------------------------
// Capture everything queued between begin and end into a graph; launch replays it.
struct Graph {
  void* exec = nullptr;
};
void begin_capture();
Graph end_capture();
void launch(const Graph& g);
void destroy(Graph& g);

// Device-to-device copy bandwidth (bytes read + written per second) over a buffer of `bytes`:
// the memory-bandwidth ceiling that decode is measured against.
double measure_copy_bandwidth(size_t bytes);
// Device milliseconds per call of `queue`: its work is captured into a graph once, then the
// graph is replayed `reps` times between two events (for benchmarks of kernels that take µs).
double time_ms(const std::function<void()>& queue, int reps);

// ---- model operations ----------------------------------------------------------------------
// out[i, :] = table[tokens[i], :] as f32, tokens on the device (the caller validates the ids).
void embed(const bf16* table, const int32_t* tokens, int m, int n_embd, float* out);
// out = x / rms(x) * w, rows of n; out in bf16 (the next matmul's input).
// clear (may be null): also zero clear_n floats of each of the rows of it (row stride ld_clear),
// for a product that adds into its output next (the lookup-table GEMM): no separate launch.
void rms_norm(const float* x, const float* w, bf16* out, int rows, int n, float eps, float* clear = nullptr,
              int clear_n = 0, int ld_clear = 0);
// y[m, n] = x[m, k] * W[n, k]^T, plus y when accumulate (the residual add, fused); rows of y
// ldy floats apart (0: n).
// Up to 4 rows of x against a small matrix, and 1-2 rows against a large one (decode; see
// matvec_fits), go to matvec() when it fits, the rest to cuBLAS.
void matmul(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy = 0);
// matmul's kernel for decode on small matrices: m <= 4, k a multiple of 8, x and w 16-byte
// aligned, weights of at most 16 MiB; one row: 32 MiB, or any size where k <= 1024 (small
// models' LM heads), and 1-2 rows against any larger matrix whose k is a multiple of 2048
// (through the streaming kernel below) (matvec_fits; IK_MATVEC_CUBLAS=1 turns it off, to
// compare; IK_MATVEC_ONE_ROW_MB=N: one row up to N MiB, whatever k, where it does not stream).
// A chained launch: it starts reading weights while the previous kernel still runs. matvec()
// itself takes any n (bench-matvec times it on large matrices too).
bool matvec_fits(const bf16* x, const bf16* w, int m, int n, int k);
void matvec(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy);
// The streaming matvec for large matrices (TMA copies into per-warp rings; each warp owns whole
// rows, so results are deterministic): m <= 4, k a multiple of 2048, m * k * 2 <= 64 KB, x and w
// 16-byte aligned (stream_matvec_fits). matvec() sends 1-2 rows against more than 16 MiB of
// weights here where it fits (matvec_streams; IK_MATVEC_STREAM=off turns that off and "WxS"
// sets warps per block x ring slots per warp, default 16x2, for comparisons).
bool stream_matvec_fits(const bf16* x, const bf16* w, int m, int n, int k);
void stream_matvec(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy);
bool matvec_streams(const bf16* x, const bf16* w, int m, int n, int k);
// matvec of the RMSNorm of x: y (+)= (x / rms(x) * norm_w) W^T for x in f32 rows of k, the
// normalised rows rounded to bf16 as rms_norm writes them (computed per block into shared
// memory, so the decode step launches no separate norm). Fits (what the model asks) for one row
// where matvec does, with x and norm_w 16-byte aligned and k * 2 <= 48 KB (small matrices) or
// where the product streams (large ones), unless IK_NO_DECODE_FUSION is 1 or norm;
// matvec_rms_norm itself takes 1-4 rows.
bool matvec_rms_norm_fits(const float* x, const float* norm_w, const bf16* w, int m, int n, int k);
void matvec_rms_norm(const float* x, const float* norm_w, float eps, const bf16* w, float* y, int m, int n, int k,
                     bool accumulate, int ldy);
// matmul through cuBLAS whatever m is (the baseline bench-matvec compares with).
void matmul_cublas(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy = 0);
// The same in IEEE half: f16 in and out, fp32 accumulation (the baseline the lookup-table
// kernel is measured against; see lut_gemm.hpp).
void matmul_f16(const uint16_t* x, const uint16_t* w, uint16_t* y, int m, int n, int k);
// qkv: [m, q_dim + 2 kv_dim] f32 from the fused projection. Rotates q (in place) and k by
// position pos[i]; writes k and v as bf16 into the cache at row cache_row[i] of sequence
// seq[i] (cache layout [n_seq, n_ctx, kv_dim]; seq null: row i is sequence i). inv_freq:
// head_dim/2 values on the device.
// half_layout: pairs (i, i + d/2) (Hugging Face) instead of (2i, 2i+1) (GGUF).
void rope_and_store_kv(float* qkv, int m, int n_head, int n_kv, int head_dim, const int32_t* pos,
                       const int32_t* seq, const int32_t* cache_row, const float* inv_freq, bool half_layout,
                       bf16* k_cache, bf16* v_cache, int n_ctx);
// out[m, n_ff] (bf16) = silu(gate) * up, where gu = [m, 2 n_ff] holds gate then up per row.
void silu_mul(const float* gu, bf16* out, int m, int n_ff);

// Prefill attention (flash-attention style: tiles of K/V in shared memory, online softmax)
// for m new queries of one sequence at cache rows n_past .. n_past+m-1. q: rows of the fused
// qkv buffer (stride q_stride floats). Query i sees rows < n_past, and among the new rows
// row j when mask[i*m + j] != 0 (device, may be null: causal j <= i + diag, key tiles past the
// diagonal skipped; diag -1: strictly earlier rows, diag <= -m: none of the new rows, i.e. a full
// block of the n_past rows — the blocks of ring and striped attention). out: [m, n_head*hd] bf16.
// n_past_dev (device, may be null): read n_past there instead (a captured graph that outlives it).
// scratch (may be null; attention_decode_scratch_floats(m, ...)): lets a pass of few queries
// split the keys over more blocks (flash decoding) when one block per head would leave SMs idle.
void attention_prefill(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int m,
                       int n_past, int n_head, int n_kv, int head_dim, const uint8_t* mask, int diag = 0,
                       const int32_t* n_past_dev = nullptr, float* scratch = nullptr);
// One block of context-parallel attention: the same visibility as attention_prefill (keys
// [0, n_past) all visible, then row j of the next m when j <= i + diag), no mask, and instead of
// bf16 output: o [m, n_head*hd] f32 (normalised over this block's keys) and lse [m, n_head], the
// log-sum-exp of the block's scaled scores (-inf where no key is visible).
void attention_block(const float* q, int q_stride, const bf16* k, const bf16* v, int m, int n_past, int n_head,
                     int n_kv, int head_dim, int diag, float* o, float* lse);
// Online-softmax merge of a block into an accumulator (acc_lse = -inf: empty): acc_o and o are
// [m, n_head*head_dim], acc_lse and lse [m, n_head].
void attention_merge(float* acc_o, float* acc_lse, const float* o, const float* lse, int m, int n_head, int head_dim);
// Decode attention (split-K flash decoding) for n sequences with one query each: query b is
// sequence b's row n_past[b] (device) and sees rows 0..n_past[b]. Reads n_past from device
// memory, so a captured graph stays valid as the sequences grow. scratch: see
// attention_decode_scratch_floats. tensor_cores: the kernel (decode_tensor_cores) - the
// tensor-core one (a GQA group's query heads as the rows of MMA tiles, attention_decode_tc) or
// the CUDA-core one (a warp's dot product per key and head).
void attention_decode(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int n,
                      const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                      bool tensor_cores);
// The faster decode attention kernel for n sequences whose longest has `keys` keys: tensor cores
// from two sequences on, and for one from kDecodeTensorCoreKeys keys on; below that the CUDA-core
// kernel, whose per-key work costs less than the tensor-core kernel's tiles and merge at short
// contexts (one H200: bench/cuda/results/decode_tc_routing_h200.txt). IK_DECODE_TC=1 / 0:
// always / never. A captured decode graph fixes the kernel, so its owner captures again when
// the answer changes as the sequences grow.
constexpr int64_t kDecodeTensorCoreKeys = 1536;
bool decode_tensor_cores(int n, int64_t keys);
// attention_decode on tensor cores with `splits` (1-32) key slices per (sequence, KV head),
// their partial results in scratch, merged.
void attention_decode_tc(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int n,
                         const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                         int splits);
// attention_decode with rope_and_store_kv fused in (one launch less per layer): qkv holds the n
// rows' q | k | v as the projection left them (not rotated); each block rotates its query heads
// at position n_past[b], and the block whose slice holds that row rotates its key and writes it
// and the value (bf16) into row n_past[b] of sequence b's cache before reading it.
// IK_NO_DECODE_FUSION=1 runs the two kernels instead (and rotates q in qkv), to compare.
// tensor_cores: as attention_decode (both kernels fuse the RoPE and the store).
void rope_store_attention_decode(float* qkv, int qkv_stride, bf16* k_cache, bf16* v_cache, bf16* out, int n,
                                 const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                                 const float* inv_freq, bool half_layout, bool tensor_cores);
size_t attention_decode_scratch_floats(int n, int n_head, int head_dim);
// A draft tree's verification pass through the fused decode kernel: m rows of one sequence
// (k_cache, v_cache: its caches) at cache rows n_past[0] + i, row i rotated at pos[i] and seeing
// the cached rows < n_past[0] and tree row j where mask[i * m + j] (n_past, pos, mask: device,
// read at replay); each row's key and value stored into its cache row. For trees of up to
// tree_decode_max_rows() rows (kTreeDecodeRows; IK_TREE_DECODE_ROWS=N lowers it, 0: never)
// whose nodes each see at most kTreeDecodeSeen tree rows (themselves included): the tree rows a
// node sees are rotated by one block, so deep trees take longer. Others go through
// rope_and_store_kv and attention_prefill, whose tensor-core tiles share each key's load among
// 16 rows.
constexpr int kTreeDecodeRows = 16, kTreeDecodeSeen = 8;
int tree_decode_max_rows();
void rope_store_attention_tree(float* qkv, int qkv_stride, bf16* k_cache, bf16* v_cache, bf16* out, int m,
                               const int32_t* n_past, const int32_t* pos, const uint8_t* mask, int n_head, int n_kv,
                               int head_dim, float* scratch, const float* inv_freq, bool half_layout);
// n[i] += by for i < count (advances positions inside a captured decode or verification graph).
void increment(int32_t* n, int count, int by = 1);

// ---- sampling -----------------------------------------------------------------------------
// Parameters on the device, so one captured graph serves any settings. The rule matches the
// CPU sampler (llm/runtime/sampler): top-k on logits, then probabilities at temperature T,
// top-p on them, then min-p; temperature 0 is argmax (lowest index among ties).
struct SamplingParams {
  float temperature = 0;
  int top_k = 0;
  float top_p = 1;
  float min_p = 0;
  uint64_t seed = 0;
  uint64_t counter = 0;  // draws so far; the kernel advances it
};
// ---- speculative decoding (draft heads) ----------------------------------------------------
// out[r, 0..k) = the indices of row r's k largest logits, largest first, ties by smaller index
// (k <= kMaxTopK; k = 1 is the greedy token, through argmax_rows).
constexpr int kMaxTopK = 32;
void top_k_rows(const float* logits, int rows, int n_vocab, int k, int32_t* out);
// y[m, n] += silu(pre + bias) (bias [n]): the draft heads' ResBlock.
void bias_silu_add(const float* pre, const float* bias, float* y, int m, int n);
// Drafting a tree on the device, whose nodes' tokens are tree_tokens[node]. Hydra's head input:
// row r of x [rows, (L + 1) d] = [h | E(tree_tokens[chain[r L]]) | ... | E(tree_tokens[chain[r L + L - 1]])]
// (chain: the nodes from the root to row r's parent; h [d] f32, the embedding table bf16 [n_vocab, d]).
void hydra_input(const float* h, const bf16* embd, const int32_t* tree_tokens, const int32_t* chain, int rows, int L,
                 int d, float* x);
// The candidates become nodes: tree_tokens[node[i]] = topk[row[i] * k + rank[i]], plan = [node | row | rank] (3 n).
void scatter_candidates(const int32_t* topk, int k, const int32_t* plan, int n, int32_t* tree_tokens);
// KV-cache compaction: in each of the n_caches caches (a device array of pointers to rows of
// row_elems values), row dst_row0 + i = row src_rows[i] (device; increasing, >= dst_row0 + i).
void keep_cache_rows(bf16* const* caches, int n_caches, int row_elems, const int32_t* src_rows, int n, int dst_row0);

// The greedy token of each row of logits [rows, n_vocab]: the lowest index holding the row's
// maximum (0 for a row of -inf), by the sampler's first pass over 64 chunks per row.
void argmax_rows(const float* logits, int rows, int n_vocab, int32_t* tokens);
// One block per row of logits [n, n_vocab]; row i uses params[i] (device) and tokens[i]
// receives its draw.
void sample(const float* logits, int n, int n_vocab, SamplingParams* params, int32_t* tokens);

}  // namespace ik::backend::cuda
