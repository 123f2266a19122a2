#include "llm/runtime/session.hpp"

#include <algorithm>
#include <chrono>

#include "core/error.hpp"
#include "llm/runtime/stop_strings.hpp"

namespace ik::llm {

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Session::Session(LlamaModel& model, const Tokenizer& tok, int64_t n_ctx, int64_t batch)
    : Session(make_cpu_sequence(model, n_ctx, batch), tok) {}

Session::Session(std::unique_ptr<Sequence> seq, const Tokenizer& tok) : seq_(std::move(seq)), tok_(tok) {
  IK_CHECK(seq_->n_ctx() > 0, "context size must be positive");
}

void Session::set_context(const std::vector<int32_t>& tokens) {
  IK_CHECK(int64_t(tokens.size()) < seq_->n_ctx(),
           "prompt is {} tokens, which does not fit the context of {} (use --ctx to raise it, up to the model's {})",
           tokens.size(), seq_->n_ctx(), seq_->config().n_ctx_train);
  IK_CHECK(!tokens.empty(), "empty prompt");
  size_t common = 0;
  while (common < tokens.size() && common < tokens_.size() && tokens[common] == tokens_[common]) ++common;
  // The logits of the last token are needed, so at least one token is always recomputed.
  if (common == tokens.size()) --common;
  seq_->rewind(int64_t(common));
  tokens_.assign(tokens.begin(), tokens.begin() + common);
  auto t0 = Clock::now();
  seq_->append(tokens.data() + common, int64_t(tokens.size() - common));
  last_prefill_s_ = seconds_since(t0);
  last_prefill_n_ = int(tokens.size() - common);
  tokens_ = tokens;
}

GenerateResult Session::generate(const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text) {
  IK_CHECK(opt.max_tokens >= -1, "max tokens must be >= 0 or -1 (got {})", opt.max_tokens);
  IK_CHECK(!tokens_.empty(), "generate: no context (set a prompt first)");
  for (const auto& s : opt.stop) IK_CHECK(!s.empty(), "stop strings must not be empty");
  GenerateResult r;
  r.prompt_tokens = last_prefill_n_;
  r.prefill_s = last_prefill_s_;
  seq_->set_sampling(opt.sampling);
  Utf8Streamer utf8;
  std::string pending;  // decoded text not yet streamed
  size_t emitted = 0;   // bytes of r.text already streamed
  const auto& stop_ids = tok_.stop_ids();
  auto t0 = Clock::now();
  r.stop_reason = "length";
  while (opt.max_tokens < 0 || int(r.tokens.size()) < opt.max_tokens) {
    const int32_t next = seq_->next_token(tokens_);
    if (opt.stop_at_eos && std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
      r.stop_reason = "eos";
      break;
    }
    r.tokens.push_back(next);
    r.text += utf8.push(tok_.token_to_piece(next));
    // Stop strings: cut the text at the first match; stream only what cannot start one.
    const bool stopped = cut_at_stop(r.text, emitted, opt.stop);
    const size_t safe = stopped ? r.text.size() : r.text.size() - stop_hold_back(r.text, opt.stop);
    if (on_text && safe > emitted) {
      if (!on_text(r.text.substr(emitted, safe - emitted))) {
        emitted = safe;
        r.stop_reason = "cancelled";
        break;
      }
    }
    emitted = std::max(emitted, safe);
    if (stopped) {
      r.stop_reason = "stop";
      break;
    }
    if (seq_->n_past() + 1 >= seq_->n_ctx()) {
      r.stop_reason = "context";
      break;
    }
    seq_->append(&next, 1);
    tokens_.push_back(next);
  }
  if (r.stop_reason != "stop" && r.stop_reason != "cancelled") {
    r.text += utf8.flush();
    if (on_text && r.text.size() > emitted) on_text(r.text.substr(emitted));
  }
  r.decode_s = seconds_since(t0);
  last_prefill_n_ = 0;
  last_prefill_s_ = 0;
  return r;
}

TokenTextStream::TokenTextStream(const Tokenizer& tok, const std::vector<std::string>& stop,
                                 std::function<bool(const std::string&)> on_text)
    : tok_(tok), stop_(stop), on_text_(std::move(on_text)) {
  for (const auto& s : stop_) IK_CHECK(!s.empty(), "stop strings must not be empty");
}

bool TokenTextStream::push(int32_t token) {
  text_ += utf8_.push(tok_.token_to_piece(token));
  const bool stopped = cut_at_stop(text_, emitted_, stop_);
  const size_t safe = stopped ? text_.size() : text_.size() - stop_hold_back(text_, stop_);
  if (on_text_ && safe > emitted_ && !on_text_(text_.substr(emitted_, safe - emitted_))) {
    emitted_ = safe;
    stop_reason_ = "cancelled";
    return false;
  }
  emitted_ = std::max(emitted_, safe);
  if (stopped) stop_reason_ = "stop";
  return !stopped;
}

void TokenTextStream::finish() {
  if (!stop_reason_.empty()) return;
  text_ += utf8_.flush();
  if (on_text_ && text_.size() > emitted_) on_text_(text_.substr(emitted_));
  emitted_ = text_.size();
}

}  // namespace ik::llm
