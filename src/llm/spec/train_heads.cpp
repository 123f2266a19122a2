#include "llm/spec/train_heads.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/train/adamw.hpp"
#include "llm/train/block.hpp"
#include "llm/runtime/sampler.hpp"
#include "llm/train/ops.hpp"

namespace ik::llm::spec {

FrozenBase::FrozenBase(LlamaModel& m) : model(m) {
  const auto& c = m.config();
  lm_head.resize(size_t(c.n_vocab * c.n_embd));
  for (int64_t r = 0; r < c.n_vocab; ++r) backend::weight_row(m.lm_head(), r, lm_head.data() + r * c.n_embd);
}

namespace {

// One sequence's head inputs: the per-position state the heads read (base hidden, or the
// Hydra++ prefix over it) and what the prefix backward needs.
struct SeqStates {
  int64_t T = 0;
  std::vector<float> states;      // [T, d]
  std::vector<float> prefix_out;  // [T, d]: prefix layer output before its norm
  train::BlockActivations acts;
};

void seq_states(const DraftHeads& heads, const train::Block* block, const DistillData& data, int64_t s, SeqStates& out) {
  const int64_t d = heads.d(), first = data.seq_start[s];
  out.T = data.seq_start[s + 1] - first;
  const float* h = data.hidden.data() + first * d;
  if (!heads.has_prefix()) {
    out.states.assign(h, h + out.T * d);
    return;
  }
  out.prefix_out.resize(size_t(out.T * d));
  out.states.resize(out.prefix_out.size());
  block->forward(heads.prefix, h, out.prefix_out.data(), out.T, nullptr, nullptr, out.acts);
  backend::rms_norm(out.prefix_out.data(), heads.prefix_norm.data(), out.states.data(), out.T, d,
                    block->config().rms_eps);
}

// Head i's input rows for positions pos (relative to the sequence start).
void head_inputs(const DraftHeads& heads, int i, const LlamaModel& model, const DistillData& data, int64_t s,
                 const SeqStates& st, const std::vector<int64_t>& pos, std::vector<float>& x) {
  const int64_t d = heads.d(), width = heads.input_width(i);
  x.resize(pos.size() * size_t(width));
  const int32_t* toks = data.tokens.data() + data.seq_start[s];
  for (size_t r = 0; r < pos.size(); ++r) {
    float* row = x.data() + r * width;
    std::memcpy(row, st.states.data() + pos[r] * d, sizeof(float) * d);
    if (width > d) model.embed(toks + pos[r] + 1, i + 1, row + d);  // x_{t+1} .. x_{t+i+1}
  }
}

// The teacher's distribution at data row `row`, written densely into p [n] (zeroed first);
// slot (when set) maps a token to its index in the step's sampled vocabulary.
void teacher_row(const DistillData& data, int64_t row, float* p, int64_t n, const int32_t* slot) {
  std::fill(p, p + n, 0.0f);
  for (int k = 0; k < data.top_k; ++k) {
    const int32_t id = data.teacher_ids[row * data.top_k + k];
    p[slot ? slot[id] : id] += data.teacher_probs[row * data.top_k + k];
  }
}

// Positions t of sequence s where every head has a target: from the last prompt token to
// T - 1 - n_heads.
std::pair<int64_t, int64_t> valid_range(const DistillData& data, int64_t s, int n_heads) {
  const int64_t first = data.seq_start[s];
  const int64_t lo = std::max<int64_t>(0, data.answer_start[s] - 1 - first);
  const int64_t hi = data.seq_start[s + 1] - first - 1 - n_heads;  // inclusive
  return {lo, hi};
}

}  // namespace

void train_heads(DraftHeads& heads, FrozenBase& base, const DistillData& data, const TrainOptions& opt,
                 const std::function<void(int, int, double)>& on_step) {
  const auto& c = base.model.config();
  IK_CHECK(data.n_embd == heads.d() && data.n_vocab == heads.base.n_vocab && data.base_name == heads.base.name,
           "distillation data was made with '{}' (hidden {}, vocabulary {}), the heads are for '{}'", data.base_name,
           data.n_embd, data.n_vocab, heads.base.name);
  IK_CHECK(opt.steps >= 1 && opt.seqs_per_step >= 1 && opt.positions_per_seq >= 1, "training sizes must be positive");
  IK_CHECK(opt.dropout >= 0 && opt.dropout < 1, "dropout must be in [0, 1)");
  const int64_t d = heads.d(), V = data.n_vocab;
  const int H = heads.n_heads();
  std::vector<int64_t> usable;
  for (int64_t s = 0; s < data.n_seqs(); ++s) {
    auto [lo, hi] = valid_range(data, s, H);
    if (hi >= lo) usable.push_back(s);
  }
  IK_CHECK(!usable.empty(), "distillation data has no sequence long enough for {} heads", H);

  std::unique_ptr<train::Block> block;
  train::BlockWeights prefix_grads;
  std::vector<float> prefix_norm_grad;
  if (heads.has_prefix()) {
    block = std::make_unique<train::Block>(c);
    prefix_grads = train::BlockWeights::zeros(c);
    prefix_norm_grad.assign(size_t(d), 0.0f);
  }
  std::vector<Head> grads = zero_like(heads.heads);
  std::vector<train::ParamRef> params;
  for (int i = 0; i < H; ++i)
    for (size_t b = 0; b < heads.heads[i].blocks.size(); ++b) {
      HeadBlock& w = heads.heads[i].blocks[b];
      HeadBlock& g = grads[i].blocks[b];
      params.push_back({w.fc.w.data(), g.fc.w.data(), int64_t(w.fc.w.size())});
      params.push_back({w.fc.b.data(), g.fc.b.data(), int64_t(w.fc.b.size())});
      if (w.proj.n_out) params.push_back({w.proj.w.data(), g.proj.w.data(), int64_t(w.proj.w.size())});
    }
  if (block) {
    for (auto p : heads.prefix.params(prefix_grads)) params.push_back(p);
    params.push_back({heads.prefix_norm.data(), prefix_norm_grad.data(), d});
  }
  train::AdamW adam({.lr = opt.lr, .weight_decay = opt.weight_decay});
  Rng rng(opt.seed, 7);

  SeqStates st;
  HeadActivations acts;
  std::vector<float> x, keep, logits, target, dlogits, dout, dx, dstates, dprefix;
  std::vector<int64_t> pos;
  std::vector<int32_t> vocab, slot(static_cast<size_t>(V), -1);
  std::vector<float> lm_sub;
  for (int step = 0; step < opt.steps; ++step) {
    for (auto& head : grads)
      for (auto& b : head.blocks)
        for (Dense* l : {&b.fc, &b.proj}) {
          std::fill(l->w.begin(), l->w.end(), 0.0f);
          std::fill(l->b.begin(), l->b.end(), 0.0f);
        }
    if (block) {
      prefix_grads.set_zero();
      std::fill(prefix_norm_grad.begin(), prefix_norm_grad.end(), 0.0f);
    }
    // The step's sequences and positions, then the vocabulary the loss is computed over.
    std::vector<std::pair<int64_t, std::vector<int64_t>>> batch;
    for (int q = 0; q < opt.seqs_per_step; ++q) {
      const int64_t s = usable[rng.below(usable.size())];
      auto [lo, hi] = valid_range(data, s, H);
      pos.clear();
      for (int k = 0; k < opt.positions_per_seq && k <= hi - lo; ++k) pos.push_back(lo + int64_t(rng.below(uint64_t(hi - lo + 1))));
      std::sort(pos.begin(), pos.end());
      pos.erase(std::unique(pos.begin(), pos.end()), pos.end());
      batch.push_back({s, pos});
    }
    const float* lm = base.lm_head.data();
    int64_t Vs = V;  // vocabulary size of this step's loss
    if (opt.sampled_vocab > 0) {
      for (int32_t v : vocab) slot[v] = -1;
      vocab.clear();
      auto add = [&](int32_t v) {
        if (slot[v] < 0) slot[v] = int32_t(vocab.size()), vocab.push_back(v);
      };
      for (const auto& [s, ps] : batch)
        for (int64_t t : ps)
          for (int i = 0; i < H; ++i)
            for (int k = 0; k < data.top_k; ++k) add(data.teacher_ids[(data.seq_start[s] + t + i + 1) * data.top_k + k]);
      for (int k = 0; k < opt.sampled_vocab; ++k) add(int32_t(rng.below(uint64_t(V))));
      Vs = int64_t(vocab.size());
      lm_sub.resize(size_t(Vs * d));
      for (int64_t j = 0; j < Vs; ++j) std::memcpy(lm_sub.data() + j * d, lm + vocab[j] * d, sizeof(float) * d);
      lm = lm_sub.data();
    }
    double loss = 0;
    for (const auto& [s, positions] : batch) {
      pos = positions;
      const int64_t m = int64_t(pos.size());
      seq_states(heads, block.get(), data, s, st);
      if (block) dstates.assign(size_t(st.T * d), 0.0f);
      for (int i = 0; i < H; ++i) {
        const int64_t width = heads.input_width(i);
        head_inputs(heads, i, base.model, data, s, st, pos, x);
        // Inverted dropout on the head input.
        keep.resize(x.size());
        for (size_t j = 0; j < x.size(); ++j) {
          keep[j] = rng.uniform() < opt.dropout ? 0.0f : 1.0f / (1.0f - opt.dropout);
          x[j] *= keep[j];
        }
        heads.forward(i, x.data(), m, acts);
        logits.resize(size_t(m * Vs));
        train::linear_forward(acts.out.data(), lm, nullptr, logits.data(), m, d, Vs);
        target.resize(logits.size());
        for (int64_t r = 0; r < m; ++r)
          teacher_row(data, data.seq_start[s] + pos[r] + i + 1, target.data() + r * Vs, Vs, vocab.empty() ? nullptr : slot.data());
        dlogits.resize(logits.size());
        loss += train::soft_cross_entropy(logits.data(), target.data(), m, Vs, dlogits.data()) / (opt.seqs_per_step * H);
        for (float& g : dlogits) g /= float(opt.seqs_per_step);
        dout.assign(size_t(m * d), 0.0f);
        train::linear_backward(acts.out.data(), lm, dlogits.data(), dout.data(), nullptr, nullptr, m, d, Vs);
        if (block) dx.assign(size_t(m * width), 0.0f);
        heads.backward(i, acts, dout.data(), grads[i], block ? dx.data() : nullptr);
        if (block)
          for (int64_t r = 0; r < m; ++r)
            for (int64_t j = 0; j < d; ++j) dstates[pos[r] * d + j] += dx[r * width + j] * keep[r * width + j];
      }
      if (block) {
        dprefix.assign(size_t(st.T * d), 0.0f);
        train::rms_norm_backward(st.prefix_out.data(), heads.prefix_norm.data(), dstates.data(), dprefix.data(),
                                 prefix_norm_grad.data(), st.T, d, c.rms_eps);
        block->backward(heads.prefix, st.acts, dprefix.data(), nullptr, prefix_grads);
      }
    }
    adam.step(params, train::lr_schedule(step, opt.steps, opt.warmup, opt.lr, opt.lr * opt.final_lr_ratio));
    if (on_step) on_step(step, opt.steps, loss);
  }
}

std::vector<std::vector<double>> head_rank_accuracy(const DraftHeads& heads, FrozenBase& base, const DistillData& data,
                                                    int max_positions, int ranks) {
  IK_CHECK(ranks >= 1, "ranks: {} (at least 1)", ranks);
  const int64_t V = data.n_vocab;
  const int H = heads.n_heads();
  std::unique_ptr<train::Block> block;
  if (heads.has_prefix()) block = std::make_unique<train::Block>(base.model.config());
  int64_t total = 0;
  for (int64_t s = 0; s < data.n_seqs(); ++s) {
    auto [lo, hi] = valid_range(data, s, H);
    total += std::max<int64_t>(0, hi - lo + 1);
  }
  IK_CHECK(total > 0, "no positions to evaluate");
  const int64_t stride = std::max<int64_t>(1, total / std::max(1, max_positions));
  std::vector<std::vector<int64_t>> hits(size_t(H), std::vector<int64_t>(size_t(ranks), 0));
  std::vector<int64_t> counts(size_t(H), 0);
  SeqStates st;
  HeadActivations acts;
  std::vector<float> x, logits;
  std::vector<int64_t> pos;
  int64_t seen = 0;
  for (int64_t s = 0; s < data.n_seqs(); ++s) {
    auto [lo, hi] = valid_range(data, s, H);
    pos.clear();
    for (int64_t t = lo; t <= hi; ++t, ++seen)
      if (seen % stride == 0) pos.push_back(t);
    if (pos.empty()) continue;
    seq_states(heads, block.get(), data, s, st);
    const int64_t m = int64_t(pos.size());
    for (int i = 0; i < H; ++i) {
      head_inputs(heads, i, base.model, data, s, st, pos, x);
      heads.forward(i, x.data(), m, acts);
      logits.resize(size_t(m * V));
      backend::matmul(base.model.lm_head(), acts.out.data(), logits.data(), m);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t row = data.seq_start[s] + pos[r] + i + 1;
        const int32_t truth = data.teacher_ids[row * data.top_k];
        const float* l = logits.data() + r * V;
        int64_t rank = 0;  // tokens ahead of the truth (ties: the lower id first, as argmax)
        for (int64_t v = 0; v < V && rank < ranks; ++v) rank += l[v] > l[truth] || (l[v] == l[truth] && v < truth);
        if (rank < ranks) ++hits[i][size_t(rank)];
        ++counts[i];
      }
    }
  }
  std::vector<std::vector<double>> acc(size_t(H), std::vector<double>(size_t(ranks), 0.0));
  for (int i = 0; i < H; ++i)
    for (int r = 0; r < ranks; ++r) acc[i][r] = counts[i] ? double(hits[i][r]) / counts[i] : 0;
  return acc;
}

std::vector<double> head_top1(const DraftHeads& heads, FrozenBase& base, const DistillData& data, int max_positions) {
  std::vector<double> top1;
  for (const auto& row : head_rank_accuracy(heads, base, data, max_positions, 1)) top1.push_back(row[0]);
  return top1;
}

}  // namespace ik::llm::spec
