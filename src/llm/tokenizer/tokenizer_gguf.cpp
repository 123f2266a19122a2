// Loading a tokenizer from GGUF metadata (tokenizer.ggml.*), as llama.cpp writes it.
#include "core/error.hpp"
#include "io/gguf.hpp"
#include "llm/tokenizer/tokenizer_impl.hpp"

namespace ik::llm {

namespace {
int32_t optional_id(const io::GgufFile& f, const char* key) {
  const io::GgufValue* v = f.find(key);
  return v ? static_cast<int32_t>(v->as_int()) : -1;
}

bool optional_bool(const io::GgufFile& f, const char* key, bool def) {
  const io::GgufValue* v = f.find(key);
  return v ? v->as_bool() : def;
}
}  // namespace

Tokenizer Tokenizer::from_gguf(const io::GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  VocabSpec spec;
  if (model == "gpt2") {
    spec.byte_level = true;
    spec.pre = pre_tokenizer_from_name(f.get_string("tokenizer.ggml.pre", "default"));
    spec.ignore_merges = spec.pre == PreTokenizer::kLlama3;
    for (const std::string& m : f.get("tokenizer.ggml.merges").as_string_array()) {
      const size_t space = m.find(' ', 1);  // "left right"; a token may itself be " "
      IK_CHECK(space != std::string::npos, "malformed tokenizer merge '{}' in {}", m, f.path());
      spec.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
  } else if (model == "llama") {
    spec.byte_level = false;
    spec.pre = PreTokenizer::kNone;
    spec.space_prefix = optional_bool(f, "tokenizer.ggml.add_space_prefix", true)
                            ? SpacePrefix::kAfterSpecial
                            : SpacePrefix::kNever;
    spec.scores = f.get("tokenizer.ggml.scores").as_float_array();
  } else {
    fail("unsupported tokenizer model '{}' in {} (supported: gpt2, llama)", model, f.path());
  }
  spec.tokens = f.get("tokenizer.ggml.tokens").as_string_array();
  if (const io::GgufValue* types = f.find("tokenizer.ggml.token_type")) {
    for (int64_t t : types->as_int_array()) spec.types.push_back(static_cast<int32_t>(t));
  }
  spec.bos = optional_id(f, "tokenizer.ggml.bos_token_id");
  spec.eos = optional_id(f, "tokenizer.ggml.eos_token_id");
  spec.unk = optional_id(f, "tokenizer.ggml.unknown_token_id");
  spec.eot = optional_id(f, "tokenizer.ggml.eot_token_id");
  spec.eom = optional_id(f, "tokenizer.ggml.eom_token_id");
  // llama.cpp's defaults: SentencePiece models add BOS, byte-level ones do not.
  spec.add_bos = optional_bool(f, "tokenizer.ggml.add_bos_token", model == "llama");
  spec.chat_template = f.get_string("tokenizer.chat_template", "");
  Tokenizer tok;
  tok.impl_ = std::make_unique<Impl>(std::move(spec));
  return tok;
}

}  // namespace ik::llm
