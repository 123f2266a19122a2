#pragma once
// A conversation with one model: the token history and its KV cache, prefill in chunks,
// the decode loop with sampling, stop conditions and streaming of UTF-8 text.
#include <functional>
#include <string>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"
#include "llm/runtime/sequence.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm {

struct GenerateOptions {
  int max_tokens = 256;            // -1: until a stop condition or the context is full
  std::vector<std::string> stop;   // stop strings (not included in the output)
  bool stop_at_eos = true;
  SamplingParams sampling;
};

struct GenerateResult {
  std::string text;
  std::vector<int32_t> tokens;
  int prompt_tokens = 0;    // tokens prefilled for this call
  double prefill_s = 0, decode_s = 0;
  std::string stop_reason;  // "eos", "stop", "length", "context"
  double prefill_tok_s() const { return prefill_s > 0 ? prompt_tokens / prefill_s : 0; }
  double decode_tok_s() const { return decode_s > 0 ? tokens.size() / decode_s : 0; }
};

// Turns generated tokens into streamed text under the same rules as Session::generate: UTF-8
// pieces are completed first, text that could start a stop string is held back, and the text is
// cut at the first stop string. For decoders other than Session's (speculative decoding in chat).
class TokenTextStream {
 public:
  TokenTextStream(const Tokenizer& tok, const std::vector<std::string>& stop,
                  std::function<bool(const std::string&)> on_text = {});
  // Adds a token's text; false: stop now (stop_reason() is "stop" or "cancelled").
  bool push(int32_t token);
  // Streams what is left (not after a stop string or a cancel).
  void finish();
  const std::string& text() const { return text_; }
  const std::string& stop_reason() const { return stop_reason_; }

 private:
  const Tokenizer& tok_;
  const std::vector<std::string>& stop_;
  std::function<bool(const std::string&)> on_text_;
  Utf8Streamer utf8_;
  std::string text_, stop_reason_;
  size_t emitted_ = 0;  // bytes of text_ already streamed
};

class Session {
 public:
  // On the CPU engine.
  Session(LlamaModel& model, const Tokenizer& tok, int64_t n_ctx, int64_t batch = 256);
  // On any device (runtime/sequence.hpp).
  Session(std::unique_ptr<Sequence> seq, const Tokenizer& tok);

  // Make the context equal to `tokens`: keeps the longest common prefix already in the cache
  // and prefills the rest. Throws if the tokens do not fit the context.
  void set_context(const std::vector<int32_t>& tokens);
  // Generate after the current context; on_text receives each complete piece of text and may
  // return false to stop early.
  GenerateResult generate(const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text = {});

  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t n_ctx() const { return seq_->n_ctx(); }
  const std::vector<float>& last_logits() { return seq_->logits(); }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  std::unique_ptr<Sequence> seq_;
  const Tokenizer& tok_;
  std::vector<int32_t> tokens_;  // what the cache holds
  double last_prefill_s_ = 0;
  int last_prefill_n_ = 0;
};

}  // namespace ik::llm
