#pragma once
// Forward and backward passes of the operations of a Llama decoder block, for training
// (learned NormalFloat scales, Hydra++ heads, Ladder Residual retraining).
//
// Conventions, for every function in this header:
//  - fp32, row-major, a batch of m rows (one row = one token).
//  - Weight matrices are [n_out, n_in] as in the engine (y = x W^T), f32.
//  - Every backward ACCUMULATES (+=) into its gradient outputs, so gradients from several
//    uses (residual branches, shared weights, several batches) simply add up; zero them
//    yourself before a fresh step. A gradient pointer that is nullptr is skipped (and its
//    cost is saved: e.g. linear_backward with dw == nullptr does no dW gemm).
//  - The forward passes that the engine already has are reused (backend::rms_norm,
//    backend::Rope::apply, backend::silu_mul), so training and inference compute the same
//    numbers.
//  - The matmul-heavy parts (linear, attention) use OpenBLAS sgemm / OpenMP threads.
// Each backward is checked against central finite differences in tests/llm/train.
#include <cstdint>

#include "backend/cpu/ops.hpp"

namespace ik::llm::train {

// ---- linear: y[m, n] = x[m, k] W[n, k]^T (+ b[n]) --------------------------------------------

// y is overwritten. b may be nullptr (no bias).
void linear_forward(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t k, int64_t n);
// Given dy[m, n]: dx[m, k] += dy W, dw[n, k] += dy^T x, db[n] += column sums of dy.
// Any of dx, dw, db may be nullptr.
void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t m,
                     int64_t k, int64_t n);

// ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight, per row of n -----------------------------
// Forward: backend::rms_norm(x, weight, y, m, n, eps).

// Given x (the forward input) and dy: dx += dL/dx, dweight[n] += dL/dweight (either may be nullptr).
void rms_norm_backward(const float* x, const float* weight, const float* dy, float* dx, float* dweight, int64_t m,
                       int64_t n, float eps);

// ---- RoPE ------------------------------------------------------------------------------------
// Forward: rope.apply(x, m, n_heads, head_dim, pos) (in place; both backend::RopeLayout).

// The backward of a rotation is the inverse rotation: d (in place, [m, n_heads*head_dim],
// holding dL/d(rotated x)) becomes dL/d(x before rotation). Same pos as the forward.
void rope_backward(const backend::Rope& rope, float* d, int64_t m, int n_heads, int head_dim, const int32_t* pos);

// ---- causal grouped-query attention over one sequence ------------------------------------------
// q, out: [m, n_head*head_dim]; k, v: [n_keys, n_kv*head_dim] (already rotated); query head h
// uses key/value head h / (n_head / n_kv). Query i sits at key row n_keys - m + i (so
// n_keys == m is plain self-attention over the sequence). Scores are scaled by 1/sqrt(head_dim).
// Mask: nullptr = causal (query i sees key rows <= n_keys - m + i). Otherwise mask[i*n_keys + j]
// != 0 says query i may see key j (it replaces the causal rule, so include causality in it
// yourself). A query that sees no key gets a zero output (and zero gradients).
struct AttentionShape {
  int64_t m = 0, n_keys = 0;
  int n_head = 0, n_kv = 0, head_dim = 0;
};
// out is overwritten. probs (may be nullptr): [n_head, m, n_keys], the softmax weights (0 where
// masked), saved for the backward.
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* out,
                       float* probs, const uint8_t* mask = nullptr);
// Given dout [m, n_head*head_dim] and the probs of the forward: dq += , dk += , dv += (dk, dv:
// [n_keys, n_kv*head_dim]; grouped heads add into their shared kv head). Any may be nullptr.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv);

// ---- SiLU-gated MLP activation: out = silu(gate) * up --------------------------------------------
// Forward: backend::silu_mul(gate, up, out, n).

// dgate += dout * up * silu'(gate), dup += dout * silu(gate). Either may be nullptr.
void silu_mul_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup, int64_t n);

// ---- embedding gather: out[i, :] = table[tokens[i], :] --------------------------------------------

// out [m, dim] is overwritten. Throws ik::Error for a token outside [0, n_vocab).
void embedding_forward(const float* table, int64_t n_vocab, const int32_t* tokens, int64_t m, int64_t dim, float* out);
// Scatter-add: dtable[tokens[i], :] += dout[i, :].
void embedding_backward(const int32_t* tokens, int64_t m, int64_t dim, const float* dout, float* dtable);

// ---- residual add: y = a + b --------------------------------------------------------------------
// Forward: backend::add_inplace. Backward: da += dy, db += dy (either may be nullptr).
void residual_backward(const float* dy, float* da, float* db, int64_t n);

// ---- losses --------------------------------------------------------------------------------------
// Both return the MEAN loss over the scored rows (natural log) and, when dlogits is not
// nullptr, OVERWRITE dlogits [m, vocab] with d(mean loss)/d(logits) (rows not scored get 0).

// Hard targets: loss = mean over rows i with targets[i] >= 0 of -log softmax(logits_i)[targets[i]].
// A negative target (e.g. -1) marks a row that is not scored. Returns 0 if no row is scored.
double cross_entropy(const float* logits, const int32_t* targets, int64_t m, int64_t vocab, float* dlogits);
// Soft targets (distillation): loss = mean over rows of -sum_j p[i, j] log softmax(logits_i)[j],
// p [m, vocab] a probability row per token (e.g. softmax of teacher logits, see softmax_rows).
// dlogits = (softmax(logits) - p) / m.
double soft_cross_entropy(const float* logits, const float* target_probs, int64_t m, int64_t vocab, float* dlogits);
// probs[i, :] = softmax(logits[i, :] / temperature) (in place allowed: probs == logits).
void softmax_rows(const float* logits, float* probs, int64_t m, int64_t vocab, float temperature = 1.0f);

}  // namespace ik::llm::train
