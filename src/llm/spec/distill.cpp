#include "llm/spec/distill.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/gguf.hpp"
#include "llm/runtime/sampler.hpp"

namespace ik::llm::spec {

std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  IK_CHECK(in.good(), "cannot read prompt file '{}'", path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  IK_CHECK(!out.empty(), "prompt file '{}' has no prompts", path);
  return out;
}

// Greedy answers for a batch of prompts, decoded together.
static std::vector<std::vector<int32_t>> answer_batch(LlamaModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                                      const std::vector<int32_t>& stop_ids, int n_answer) {
  const auto& c = model.config();
  const size_t n = prompts.size();
  std::vector<std::unique_ptr<KVCache>> caches;
  std::vector<std::vector<int32_t>> answers(n);
  std::vector<int32_t> next(n);
  std::vector<float> logits(size_t(c.n_vocab));
  for (size_t s = 0; s < n; ++s) {
    caches.push_back(std::make_unique<KVCache>(c.n_layer, int64_t(prompts[s].size()) + n_answer + 1, c.kv_dim()));
    model.forward(prompts[s].data(), int64_t(prompts[s].size()), *caches[s], logits.data());
    next[s] = argmax(logits.data(), c.n_vocab);
  }
  std::vector<size_t> live(n);
  for (size_t s = 0; s < n; ++s) live[s] = s;
  std::vector<float> batch_logits;
  for (int step = 0; step < n_answer && !live.empty(); ++step) {
    std::vector<size_t> still;
    std::vector<int32_t> toks;
    std::vector<KVCache*> ptrs;
    for (size_t s : live) {
      if (std::find(stop_ids.begin(), stop_ids.end(), next[s]) != stop_ids.end()) continue;
      answers[s].push_back(next[s]);
      if (step + 1 == n_answer) continue;
      still.push_back(s);
      toks.push_back(next[s]);
      ptrs.push_back(caches[s].get());
    }
    live = still;
    if (live.empty()) break;
    batch_logits.resize(live.size() * size_t(c.n_vocab));
    model.forward_batch(toks.data(), int64_t(toks.size()), ptrs.data(), batch_logits.data());
    for (size_t j = 0; j < live.size(); ++j) next[live[j]] = argmax(batch_logits.data() + j * c.n_vocab, c.n_vocab);
  }
  return answers;
}

DistillData build_distill_data(LlamaModel& model, const Tokenizer& tok, const std::vector<std::string>& prompts,
                               const DistillOptions& opt) {
  const auto& c = model.config();
  IK_CHECK(opt.top_k >= 1 && opt.top_k <= 1024, "teacher top-k must be in 1..1024");
  DistillData d;
  d.base_name = c.name;
  d.n_embd = c.n_embd;
  d.n_vocab = c.n_vocab;
  d.top_k = opt.top_k;
  Progress bar("self-distillation", int64_t(prompts.size()));
  std::vector<float> logits, hidden;
  std::vector<std::pair<float, int32_t>> cand(size_t(c.n_vocab));
  for (size_t b = 0; b < prompts.size(); b += size_t(opt.batch)) {
    std::vector<std::vector<int32_t>> ids;
    for (size_t i = b; i < std::min(prompts.size(), b + size_t(opt.batch)); ++i) {
      auto p = tok.encode(tok.apply_chat_template({{"user", prompts[i]}}, true), false, true);
      if (int(p.size()) > opt.max_prompt_tokens) p.resize(size_t(opt.max_prompt_tokens));
      ids.push_back(p);
    }
    const auto answers = answer_batch(model, ids, tok.stop_ids(), opt.answer_tokens);
    for (size_t s = 0; s < ids.size(); ++s) {
      std::vector<int32_t> seq = ids[s];
      seq.insert(seq.end(), answers[s].begin(), answers[s].end());
      const int64_t T = int64_t(seq.size());
      KVCache cache(c.n_layer, T, c.kv_dim());
      logits.resize(size_t(T * c.n_vocab));
      hidden.resize(size_t(T * c.n_embd));
      model.forward(seq.data(), T, cache, logits.data(), true, nullptr, nullptr, hidden.data());
      d.seq_start.push_back(d.rows());
      d.answer_start.push_back(d.rows() + int64_t(ids[s].size()));
      d.tokens.insert(d.tokens.end(), seq.begin(), seq.end());
      d.hidden.insert(d.hidden.end(), hidden.begin(), hidden.end());
      for (int64_t t = 0; t < T; ++t) {
        const float* row = logits.data() + t * c.n_vocab;
        for (int64_t v = 0; v < c.n_vocab; ++v) cand[v] = {row[v], int32_t(v)};
        std::partial_sort(cand.begin(), cand.begin() + opt.top_k, cand.end(),
                          [](const auto& x, const auto& y) { return x.first > y.first; });
        double z = 0;
        for (int k = 0; k < opt.top_k; ++k) z += std::exp(double(cand[k].first - cand[0].first));
        for (int k = 0; k < opt.top_k; ++k) {
          d.teacher_ids.push_back(cand[k].second);
          d.teacher_probs.push_back(float(std::exp(double(cand[k].first - cand[0].first)) / z));
        }
      }
      bar.advance();
    }
    bar.set_note(fmt::format("{} rows", d.rows()));
  }
  bar.finish();
  d.seq_start.push_back(d.rows());
  return d;
}

// ---- file ------------------------------------------------------------------------------------

void DistillData::save(const std::string& path) const {
  io::GgufWriter w;
  w.set_string("general.architecture", "inferkit-distill-data");
  w.set_string("distill.base.name", base_name);
  w.set_u64("distill.base.n_embd", uint64_t(n_embd));
  w.set_u64("distill.base.n_vocab", uint64_t(n_vocab));
  w.set_u32("distill.top_k", uint32_t(top_k));
  std::vector<int32_t> starts(seq_start.begin(), seq_start.end()), answers(answer_start.begin(), answer_start.end());
  w.add_tensor("seq_start", {int64_t(starts.size())}, io::DType::I32, starts.data(), starts.size() * 4);
  w.add_tensor("answer_start", {int64_t(answers.size())}, io::DType::I32, answers.data(), answers.size() * 4);
  w.add_tensor("tokens", {rows()}, io::DType::I32, tokens.data(), tokens.size() * 4);
  w.add_tensor("hidden", {n_embd, rows()}, io::DType::F32, hidden.data(), hidden.size() * 4);
  w.add_tensor("teacher_ids", {int64_t(top_k), rows()}, io::DType::I32, teacher_ids.data(), teacher_ids.size() * 4);
  w.add_tensor("teacher_probs", {int64_t(top_k), rows()}, io::DType::F32, teacher_probs.data(), teacher_probs.size() * 4);
  w.write(path);
}

template <class T>
static std::vector<T> read_tensor(const io::GgufFile& f, const std::string& name, int64_t n) {
  const auto& t = f.tensor(name);
  IK_CHECK(t.n_elements() == n && t.nbytes == size_t(n) * sizeof(T), "distillation data '{}': tensor '{}' has {} "
           "values, expected {}", f.path(), name, t.n_elements(), n);
  std::vector<T> v(static_cast<size_t>(n));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

DistillData DistillData::load(const std::string& path) {
  io::GgufFile f = io::GgufFile::open(path);
  IK_CHECK(f.get_string("general.architecture", "") == "inferkit-distill-data",
           "'{}' is not a distillation data file (make one with `inferkit hydra data`)", path);
  DistillData d;
  d.base_name = f.get_string("distill.base.name");
  d.n_embd = f.get_int("distill.base.n_embd");
  d.n_vocab = f.get_int("distill.base.n_vocab");
  d.top_k = int(f.get_int("distill.top_k"));
  const int64_t n_seqs = f.tensor("answer_start").n_elements(), rows = f.tensor("tokens").n_elements();
  auto starts = read_tensor<int32_t>(f, "seq_start", n_seqs + 1);
  auto answers = read_tensor<int32_t>(f, "answer_start", n_seqs);
  d.seq_start.assign(starts.begin(), starts.end());
  d.answer_start.assign(answers.begin(), answers.end());
  d.tokens = read_tensor<int32_t>(f, "tokens", rows);
  d.hidden = read_tensor<float>(f, "hidden", rows * d.n_embd);
  d.teacher_ids = read_tensor<int32_t>(f, "teacher_ids", rows * d.top_k);
  d.teacher_probs = read_tensor<float>(f, "teacher_probs", rows * d.top_k);
  for (int64_t s = 0; s < n_seqs; ++s)
    IK_CHECK(d.seq_start[s] <= d.answer_start[s] && d.answer_start[s] <= d.seq_start[s + 1] &&
                 d.seq_start[s + 1] <= rows, "distillation data '{}': sequence {} has bad bounds", path, s);
  return d;
}

}  // namespace ik::llm::spec
