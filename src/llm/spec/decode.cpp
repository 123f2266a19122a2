#include "llm/spec/decode.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.hpp"

namespace ik::llm::spec {

using Clock = std::chrono::steady_clock;
static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void Drafter::rewind(int64_t n) {
  IK_CHECK(n == 0, "this drafter cannot continue a sequence");
  reset();
}

// ---- drafting with heads -----------------------------------------------------------------------

HeadDrafter::HeadDrafter(const DraftHeads& heads, LlamaModel& model, int64_t n_ctx) : heads_(heads), model_(model) {
  heads.check_base(model);
  if (heads.has_prefix()) prefix_ = std::make_unique<PrefixLayer>(heads, model.config(), n_ctx);
}

void HeadDrafter::reset() {
  if (prefix_) prefix_->truncate(0);
  h_.clear();
}

void HeadDrafter::rewind(int64_t n) {
  if (prefix_) prefix_->truncate(std::min(n, prefix_->n_past()));
  h_.clear();  // the caller observes at least one position again
}

void HeadDrafter::observe(const float* hidden, int64_t m) {
  const int64_t d = heads_.d();
  if (prefix_) {
    x_.resize(size_t(m * d));
    prefix_->append(hidden, m, x_.data());
    h_.assign(x_.end() - d, x_.end());
  } else {
    h_.assign(hidden + (m - 1) * d, hidden + m * d);
  }
}

void HeadDrafter::top_k(const float* logits, int k, int32_t* out) {
  const int64_t V = heads_.base.n_vocab;
  cand_.resize(size_t(V));
  for (int64_t j = 0; j < V; ++j) cand_[j] = {logits[j], int32_t(j)};
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (int i = 0; i < k; ++i) out[i] = cand_[i].second;
}

void HeadDrafter::propose(const DraftTree& tree, int32_t* tokens) {
  IK_CHECK(!h_.empty(), "draft heads: no hidden state observed yet");
  IK_CHECK(tree.max_depth <= heads_.n_heads(), "the draft tree is {} deep, but the heads file has only {} heads",
           tree.max_depth, heads_.n_heads());
  if (heads_.arch == HeadArch::Medusa) propose_medusa(tree, tokens);
  else propose_grounded(tree, tokens);
}

// Medusa: every head reads h_t once; depth d takes the top candidates of head d - 1.
void HeadDrafter::propose_medusa(const DraftTree& tree, int32_t* tokens) {
  const int64_t d = heads_.d(), V = heads_.base.n_vocab;
  const int D = tree.max_depth;
  x_.resize(size_t(D * d));
  for (int i = 0; i < D; ++i) {
    heads_.forward(i, h_.data(), 1, acts_);
    std::memcpy(x_.data() + i * d, acts_.out.data(), sizeof(float) * d);
  }
  logits_.resize(size_t(D * V));
  backend::matmul(model_.lm_head(), x_.data(), logits_.data(), D);
  std::vector<std::vector<int32_t>> best(D);
  for (int i = 0; i < D; ++i) {
    best[i].resize(size_t(tree.top_k[i]));
    top_k(logits_.data() + i * V, tree.top_k[i], best[i].data());
  }
  for (int n = 1; n < tree.n_nodes(); ++n) tokens[n] = best[tree.depth[n] - 1][tree.rank[n]];
}

// Hydra: level by level, head L - 1 reads h_t and the embeddings of the path from the root to
// each node at depth L - 1 that has children; its top candidates become those children.
void HeadDrafter::propose_grounded(const DraftTree& tree, int32_t* tokens) {
  const int64_t d = heads_.d(), V = heads_.base.n_vocab;
  std::vector<int32_t> chain, best;
  for (int L = 1; L <= tree.max_depth; ++L) {
    std::vector<int> parents;
    for (int n = 0; n < tree.n_nodes(); ++n)
      if (tree.depth[n] == L - 1 && !tree.children[n].empty()) parents.push_back(n);
    const int64_t rows = int64_t(parents.size()), width = heads_.input_width(L - 1);
    x_.resize(size_t(rows * width));
    for (int64_t r = 0; r < rows; ++r) {
      float* row = x_.data() + r * width;
      std::memcpy(row, h_.data(), sizeof(float) * d);
      chain.clear();
      for (int a = parents[r]; a >= 0; a = tree.parent[a]) chain.push_back(tokens[a]);
      std::reverse(chain.begin(), chain.end());  // root first: L tokens
      model_.embed(chain.data(), int64_t(chain.size()), row + d);
    }
    heads_.forward(L - 1, x_.data(), rows, acts_);
    logits_.resize(size_t(rows * V));
    backend::matmul(model_.lm_head(), acts_.out.data(), logits_.data(), rows);
    for (int64_t r = 0; r < rows; ++r) {
      const auto& kids = tree.children[parents[r]];
      best.resize(size_t(tree.rank[kids.back()] + 1));
      top_k(logits_.data() + r * V, int(best.size()), best.data());
      for (int c : kids) tokens[c] = best[tree.rank[c]];
    }
  }
}

// ---- verification and acceptance ---------------------------------------------------------------

CpuSpecBase::CpuSpecBase(LlamaModel& model, int64_t n_ctx)
    : model_(model), cache_(model.config().n_layer, n_ctx, model.config().kv_dim()) {}

void CpuSpecBase::forward(const int32_t* tokens, int64_t m, const int32_t* positions, const uint8_t* mask,
                          bool all_rows, float* hidden) {
  logits_.resize(size_t((all_rows ? m : 1) * model_.config().n_vocab));
  model_.forward(tokens, m, cache_, logits_.data(), all_rows, positions, mask, hidden);
}

void CpuSpecBase::argmax(int64_t n, int32_t* out) {
  const int64_t V = model_.config().n_vocab;
  for (int64_t i = 0; i < n; ++i) out[i] = ik::llm::argmax(logits_.data() + i * V, V);
}

SpecDecoder::SpecDecoder(LlamaModel& model, Drafter& drafter, DraftTree tree, int64_t n_ctx)
    : owned_base_(std::make_unique<CpuSpecBase>(model, n_ctx)),
      base_(*owned_base_),
      drafter_(drafter),
      tree_(std::move(tree)) {}

SpecDecoder::SpecDecoder(SpecBase& base, Drafter& drafter, DraftTree tree)
    : base_(base), drafter_(drafter), tree_(std::move(tree)) {}

// The longest root-to-node path whose every token is the base argmax at its parent.
std::vector<int> SpecDecoder::accept_greedy(const int32_t* tokens) {
  greedy_.resize(size_t(tree_.n_nodes()));
  base_.argmax(tree_.n_nodes(), greedy_.data());
  greedy_valid_ = true;
  const std::vector<int32_t>& best = greedy_;
  std::vector<int> accepted = {0};
  for (const auto& path : tree_.retrieve) {
    size_t len = 1;
    while (len < path.size() && tokens[path[len]] == best[path[len - 1]]) ++len;
    if (len > accepted.size()) accepted.assign(path.begin(), path.begin() + len);
  }
  return accepted;
}

// Typical acceptance: child c of an accepted node p is accepted when
// p_T(c) > min(epsilon, alpha * exp(-H(p_T))), p_T = softmax(logits_p / T).
std::vector<int> SpecDecoder::accept_typical(const int32_t* tokens, const SpecOptions& opt) {
  const int64_t V = base_.config().n_vocab;
  const float T = opt.sampling.temperature;
  std::vector<float> logp(size_t(tree_.n_nodes()), 0.0f);  // log p_T(token) at the parent
  std::vector<uint8_t> ok(size_t(tree_.n_nodes()), 0);
  std::vector<float> p(static_cast<size_t>(V));
  for (int n = 0; n < tree_.n_nodes(); ++n) {
    if (tree_.children[n].empty()) continue;
    const float* row = base_.logits(n);
    for (int64_t j = 0; j < V; ++j) p[j] = row[j] / T;
    backend::softmax(p.data(), V);
    double H = 0;
    for (int64_t j = 0; j < V; ++j)
      if (p[j] > 0) H -= double(p[j]) * std::log(double(p[j]));
    const double threshold = std::min(double(opt.posterior_threshold), opt.posterior_alpha * std::exp(-H));
    for (int c : tree_.children[n]) {
      ok[c] = p[tokens[c]] > threshold;
      logp[c] = std::log(std::max(p[tokens[c]], 1e-30f));
    }
  }
  std::vector<int> accepted = {0};
  double best_score = 0;
  for (const auto& path : tree_.retrieve) {
    size_t len = 1;
    double score = 0;
    while (len < path.size() && ok[path[len]]) score += logp[path[len++]];
    if (len > accepted.size() || (len == accepted.size() && len > 1 && score > best_score)) {
      accepted.assign(path.begin(), path.begin() + len);
      best_score = score;
    }
  }
  return accepted;
}

SpecResult SpecDecoder::generate(const std::vector<int32_t>& prompt, const SpecOptions& opt,
                                 const std::vector<int32_t>& stop_ids, const std::function<bool(int32_t)>& on_token) {
  cached_.clear();
  return continue_from(prompt, opt, stop_ids, on_token);
}

void SpecDecoder::reset() {
  base_.set_n_past(0);
  cached_.clear();
  drafter_.reset();
}

void SpecDecoder::feed(const int32_t* tokens, int64_t m) {
  hidden_.resize(size_t(m * base_.config().n_embd));
  base_.forward(tokens, m, nullptr, nullptr, false, hidden_.data());
  drafter_.observe(hidden_.data(), m);
  last_row_ = 0;
  greedy_valid_ = false;
}

const float* SpecDecoder::last_logits() const { return base_.logits(last_row_); }

int32_t SpecDecoder::greedy_next() {
  if (greedy_valid_) return greedy_[last_row_];
  int32_t t = 0;
  base_.argmax(1, &t);  // after feed(): the one kept row
  return t;
}

// Keep the cached rows shared with `context` (at least one token is recomputed: its logits are
// needed), prefill the rest; the drafter sees every prefilled position's hidden state.
void SpecDecoder::prefill(const std::vector<int32_t>& context, SpecResult& r) {
  size_t common = 0;
  while (common < context.size() && common < cached_.size() && context[common] == cached_[common]) ++common;
  if (common == context.size()) --common;
  base_.set_n_past(int64_t(common));
  drafter_.rewind(int64_t(common));
  for (size_t i = common; i < context.size(); i += 256)
    feed(context.data() + i, std::min<int64_t>(256, int64_t(context.size() - i)));
  r.prompt_tokens = int(context.size() - common);
  cached_.clear();  // unknown until the decode loop ends (an exception may leave it midway)
}

const std::vector<int32_t>& SpecDecoder::verify(int32_t root, const SpecOptions& opt) {
  const int64_t n_nodes = tree_.n_nodes();
  IK_CHECK(base_.n_past() + 1 <= base_.n_ctx(), "the context of {} is full", base_.n_ctx());
  tree_row0_ = base_.n_past();
  // Near the end of the context the tree may not fit: then a plain step (the root alone).
  const bool use_tree = base_.n_past() + n_nodes <= base_.n_ctx();
  const int64_t m = use_tree ? n_nodes : 1;
  tokens_.resize(size_t(n_nodes));
  positions_.resize(size_t(n_nodes));
  tokens_[0] = root;
  auto t0 = Clock::now();
  if (use_tree) drafter_.propose(tree_, tokens_.data());
  draft_s_ += seconds_since(t0);
  t0 = Clock::now();
  for (int64_t n = 0; n < m; ++n) positions_[n] = int32_t(tree_row0_ + tree_.position[n]);
  hidden_.resize(size_t(m * base_.config().n_embd));
  base_.forward(tokens_.data(), m, positions_.data(), use_tree ? tree_.mask.data() : nullptr, true, hidden_.data());
  greedy_valid_ = false;
  accepted_ = !use_tree                         ? std::vector<int>{0}
              : opt.sampling.temperature <= 0 ? accept_greedy(tokens_.data())
                                              : accept_typical(tokens_.data(), opt);
  path_.clear();
  for (int a : accepted_) path_.push_back(tokens_[a]);
  verify_s_ += seconds_since(t0);
  return path_;
}

// Keep the accepted path's KV rows (the root's row is already in place) and show the drafter
// their hidden states; the next token's logits are those of the path's last node.
void SpecDecoder::commit() {
  const auto t0 = Clock::now();
  const int64_t d = base_.config().n_embd;
  std::vector<int64_t> rows;
  kept_.resize(accepted_.size() * size_t(d));
  for (size_t i = 0; i < accepted_.size(); ++i) {
    rows.push_back(tree_row0_ + accepted_[i]);
    std::memcpy(kept_.data() + i * d, hidden_.data() + accepted_[i] * d, sizeof(float) * d);
  }
  base_.keep(tree_row0_, rows);
  drafter_.observe(kept_.data(), int64_t(accepted_.size()));
  last_row_ = accepted_.back();
  tree_row0_ = base_.n_past();
  commit_s_ += seconds_since(t0);
}

SpecResult SpecDecoder::continue_from(const std::vector<int32_t>& prompt, const SpecOptions& opt,
                                      const std::vector<int32_t>& stop_ids, const std::function<bool(int32_t)>& on_token) {
  const LlamaConfig& c = base_.config();
  const int64_t V = c.n_vocab, n_nodes = tree_.n_nodes();
  IK_CHECK(!prompt.empty(), "empty prompt");
  IK_CHECK(int64_t(prompt.size()) + n_nodes <= base_.n_ctx(), "prompt of {} tokens plus a {}-node tree does not fit "
           "the context of {}", prompt.size(), n_nodes, base_.n_ctx());
  IK_CHECK(!opt.sampling.penalizes_repeats(), "speculative decoding does not support a repetition penalty");
  const bool greedy = opt.sampling.temperature <= 0;
  Sampler sampler(opt.sampling);
  SpecResult r;

  auto t0 = Clock::now();
  prefill(prompt, r);
  std::vector<int32_t> history = prompt;
  auto pick = [&] { return greedy ? greedy_next() : sampler.sample(last_logits(), V, history); };
  int32_t root = pick();
  r.prefill_s = seconds_since(t0);

  t0 = Clock::now();
  draft_s_ = verify_s_ = commit_s_ = 0;
  r.stop_reason = "length";
  // At the top of each step the cache holds exactly `history` (the root is not in it yet).
  int64_t base = base_.n_past();
  while (opt.max_tokens < 0 || int(r.tokens.size()) < opt.max_tokens) {
    base = base_.n_past();
    if (base_.n_past() + 1 > base_.n_ctx()) {
      r.stop_reason = "context";
      break;
    }
    const std::vector<int32_t>& path = verify(root, opt);
    ++r.steps;

    // Emit the accepted tokens, stopping at an end token or the length limit.
    bool stop = false;
    for (const int32_t t : path) {
      if (opt.stop_at_eos && std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end()) {
        r.stop_reason = "eos";
        stop = true;
        break;
      }
      r.tokens.push_back(t);
      history.push_back(t);
      if (on_token && !on_token(t)) {
        r.stop_reason = "cancelled";
        stop = true;
        break;
      }
      if (opt.max_tokens >= 0 && int(r.tokens.size()) >= opt.max_tokens) {
        stop = true;
        break;
      }
    }
    if (stop) break;
    commit();
    root = pick();
    base = base_.n_past();
  }
  // A step left early holds unverified tree rows past `base`: drop them (the drafter has seen
  // exactly the first `base` positions).
  base_.set_n_past(base);
  cached_.assign(history.begin(), history.begin() + base);
  r.decode_s = seconds_since(t0);
  r.draft_s = draft_s_, r.verify_s = verify_s_, r.commit_s = commit_s_;
  return r;
}

}  // namespace ik::llm::spec
