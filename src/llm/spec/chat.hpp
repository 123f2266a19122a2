#pragma once
// Speculative decoding for a chat (`inferkit chat --spec`, `generate --spec`): each turn
// continues the decoder's KV cache (and the Hydra++ prefix layer's) from the previous turn and
// applies the stop rules of Session::generate (end tokens, stop strings, max tokens), so that
// with greedy acceptance a conversation is token for token the one plain chat produces.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llm/model/llama_gpu.hpp"
#include "llm/runtime/session.hpp"
#include "llm/spec/decode.hpp"

namespace ik::llm::spec {

// Loads the heads file of `--spec ARCH --heads FILE` and checks that it holds ARCH heads made
// for `model` (one-line errors otherwise).
DraftHeads load_heads_for(const std::string& spec, const std::string& path, const LlamaModel& model);

struct SpecTurn {
  GenerateResult gen;  // what Session::generate would report
  int steps = 0;       // verification forwards
  double mean_accepted() const { return steps ? double(gen.tokens.size()) / steps : 0; }
};

class SpecChat {
 public:
  SpecChat(LlamaModel& model, const Tokenizer& tok, DraftHeads heads, DraftTree tree, int64_t n_ctx);
  // On a GPU: the base model is `gpu` (its sequence 0) and the heads run there too.
  SpecChat(GpuLlama& gpu, const Tokenizer& tok, DraftHeads heads, DraftTree tree);
  SpecChat(const SpecChat&) = delete;
  SpecChat& operator=(const SpecChat&) = delete;

  // The reply after `context` (the whole templated conversation so far); the cached prefix it
  // shares with the previous turn is kept. on_text streams the text as in Session::generate.
  SpecTurn reply(const std::vector<int32_t>& context, const GenerateOptions& opt,
                 const std::function<bool(const std::string&)>& on_text = {});
  const DraftHeads& heads() const { return heads_; }
  const DraftTree& tree() const { return decoder_->tree(); }

 private:
  const Tokenizer& tok_;
  DraftHeads heads_;  // before drafter_, which refers to it
  std::unique_ptr<SpecBase> base_;  // null: the decoder's own CPU base
  std::unique_ptr<Drafter> drafter_;
  std::unique_ptr<SpecDecoder> decoder_;
};

}  // namespace ik::llm::spec
