#include "llm/spec/chat.hpp"

#include "core/error.hpp"
#include "llm/spec/gpu.hpp"

namespace ik::llm::spec {

DraftHeads load_heads_for(const std::string& spec, const std::string& path, const LlamaModel& model) {
  IK_CHECK(!path.empty(), "--spec {} needs --heads FILE (train one with `inferkit hydra train`)", spec);
  const HeadArch want = parse_head_arch(spec);
  DraftHeads heads = DraftHeads::load(path);
  IK_CHECK(heads.arch == want, "--spec {} but '{}' holds {} heads", spec, path, head_arch_name(heads.arch));
  heads.check_base(model);
  return heads;
}

SpecChat::SpecChat(LlamaModel& model, const Tokenizer& tok, DraftHeads heads, DraftTree tree, int64_t n_ctx)
    : tok_(tok), heads_(std::move(heads)) {
  drafter_ = std::make_unique<HeadDrafter>(heads_, model, n_ctx);
  decoder_ = std::make_unique<SpecDecoder>(model, *drafter_, std::move(tree), n_ctx);
}

SpecChat::SpecChat(GpuLlama& gpu, const Tokenizer& tok, DraftHeads heads, DraftTree tree)
    : tok_(tok), heads_(std::move(heads)) {
  base_ = std::make_unique<GpuSpecBase>(gpu);
  drafter_ = std::make_unique<GpuHeadDrafter>(heads_, gpu);
  decoder_ = std::make_unique<SpecDecoder>(*base_, *drafter_, std::move(tree));
}

SpecTurn SpecChat::reply(const std::vector<int32_t>& context, const GenerateOptions& opt,
                         const std::function<bool(const std::string&)>& on_text) {
  IK_CHECK(opt.max_tokens >= -1, "max tokens must be >= 0 or -1 (got {})", opt.max_tokens);
  SpecOptions so;
  so.max_tokens = opt.max_tokens;
  so.stop_at_eos = opt.stop_at_eos;
  so.sampling = opt.sampling;
  TokenTextStream text(tok_, opt.stop, on_text);
  SpecResult r = decoder_->continue_from(context, so, tok_.stop_ids(), [&](int32_t t) { return text.push(t); });
  text.finish();
  SpecTurn turn;
  turn.gen.text = text.text();
  turn.gen.tokens = std::move(r.tokens);
  turn.gen.prompt_tokens = r.prompt_tokens;
  turn.gen.prefill_s = r.prefill_s;
  turn.gen.decode_s = r.decode_s;
  turn.gen.stop_reason = text.stop_reason().empty() ? r.stop_reason : text.stop_reason();
  turn.steps = r.steps;
  return turn;
}

}  // namespace ik::llm::spec
