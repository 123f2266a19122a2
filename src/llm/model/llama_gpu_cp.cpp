// Context parallelism for GpuLlama (llama_gpu.hpp: prefill_cp, decode_cp): sequence 0 spread
// over the ranks of an NcclComm in the striped layout, token g on rank g mod P at cache row
// g / P, so a prompt longer than one GPU's KV cache can be served. Weights are replicated.
#include "core/error.hpp"
#include "llm/model/llama_gpu.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/cp_attention_gpu.hpp"
#endif

namespace ik::llm {

namespace cuda = backend::cuda;

#ifdef IK_HAVE_NCCL

void GpuLlama::prefill_cp(const int32_t* tokens, int64_t T, float* logits) {
  IK_CHECK(opt_.context_parallel, "prefill_cp: the model was not set up for context parallelism");
  IK_CHECK(T >= 1, "prefill_cp: no tokens");
  IK_CHECK(n_past_[0] == 0 && cp_tokens_ == 0, "prefill_cp: the sequence is not empty");
  check_tokens(tokens, T, cfg_.n_vocab);
  const LlamaConfig& c = shard_;
  const int P = cp_size_, r = cp_rank_, E = int(c.n_embd), QKV = int(c.q_dim() + 2 * c.kv_dim());
  const int64_t ring_tokens = (T - 1) / P * P, n = ring_tokens / P;
  IK_CHECK((T + P - 1) / P < opt_.n_ctx, "prompt of {} tokens: {} ranks of {} KV rows (one kept free) hold {}", T, P,
           opt_.n_ctx, P * (opt_.n_ctx - 1));
  IK_CHECK(n <= rows_cap_, "prompt of {} tokens: {} rows per rank exceed the {} rows of one pass (raise max_rows)", T, n,
           rows_cap_);
  if (n > 0) {
    embed_rows(int(n), 0, [&](int i) {  // local row i is global token i * P + r
      const int32_t g = int32_t(int64_t(i) * P + r);
      return RowSpec{tokens[g], g, i};
    });
    dist::CpGpuRing ring(*opt_.comm, dist::Layout::Striped, ring_tokens, dist::AttnShape{c.n_head, c.n_head_kv, c.head_dim});
    for (const Layer& L : layers_) {
      cuda::rms_norm(x_, L.attn_norm, xn_, int(n), E, c.rms_eps);
      project(L.qkv, xn_, qkv_, int(n));
      store_rows_kv(L, int(n));
      ring.run(qkv_, QKV, L.k, L.v);  // sequence 0: cache rows [0, n)
      cuda::convert_to_bf16(ring.out(), attn_, size_t(n) * c.q_dim());
      linear(L.o, attn_, x_, E, int(n), true);
      mlp(L, int(n), x_, true);
    }
    n_past_[0] = n;
    upload_n_past(0);
  }
  cp_tokens_ = ring_tokens;
  for (int64_t g = ring_tokens; g < T; ++g) decode_cp(tokens[g], g == T - 1 ? logits : nullptr);
}

void GpuLlama::decode_cp(int32_t token, float* logits) {
  IK_CHECK(opt_.context_parallel, "decode_cp: the model was not set up for context parallelism");
  check_tokens(&token, 1, cfg_.n_vocab);
  const LlamaConfig& c = shard_;
  const int P = cp_size_, r = cp_rank_, E = int(c.n_embd), Q = int(c.q_dim()), H = c.n_head;
  const int QKV = int(c.q_dim() + 2 * c.kv_dim());
  const int64_t g = cp_tokens_, local = n_past_[0];
  const bool owner = g % P == r;
  // A rank that does not own the token still writes its K/V, into its first free row, which no
  // query sees and the rank's next own token overwrites: one kernel path for every rank.
  IK_CHECK(local + 1 < opt_.n_ctx, "context full: {} ranks of {} KV rows (one kept free)", P, opt_.n_ctx);
  embed_rows(1, 0, [&](int) { return RowSpec{token, int32_t(g), int32_t(local)}; });
  const int visible = int(local + (owner ? 1 : 0));
  const size_t part = size_t(Q + H);
  for (const Layer& L : layers_) {
    cuda::rms_norm(x_, L.attn_norm, xn_, 1, E, c.rms_eps);
    project(L.qkv, xn_, qkv_, 1);
    store_rows_kv(L, 1);
    // This rank's rows only (diag -1 with m = 1: none of the "new" rows): output and lse.
    cuda::attention_block(qkv_, QKV, L.k, L.v, 1, visible, H, c.n_head_kv, c.head_dim, -1, cp_part_, cp_part_ + Q);
    opt_.comm->all_gather_on(cp_part_, cp_gather_, part, cuda::main_stream());
    cuda::fill_f32(cp_acc_, Q, 0.0f);
    cuda::fill_f32(cp_acc_ + Q, H, -INFINITY);
    for (int p = 0; p < P; ++p)  // the same order on every rank: bitwise the same result
      cuda::attention_merge(cp_acc_, cp_acc_ + Q, cp_gather_ + p * part, cp_gather_ + p * part + Q, 1, H, c.head_dim);
    cuda::convert_to_bf16(cp_acc_, attn_, Q);
    linear(L.o, attn_, x_, E, 1, true);
    mlp(L, 1, x_, true);
  }
  lm_head(x_, 1);
  last_rows_ = 1;
  if (owner) {
    n_past_[0] = local + 1;
    upload_n_past(0);
  }
  ++cp_tokens_;
  if (logits) cuda::download(logits, logits_, size_t(cfg_.n_vocab) * sizeof(float));
}

#else

void GpuLlama::prefill_cp(const int32_t*, int64_t, float*) { fail("context parallelism on GPUs needs NCCL"); }
void GpuLlama::decode_cp(int32_t, float*) { fail("context parallelism on GPUs needs NCCL"); }

#endif

}  // namespace ik::llm
