#pragma once
// Tokenizers loaded from GGUF metadata (tokenizer.ggml.*) or a Hugging Face tokenizer.json:
// byte-level BPE (GPT-2 / Llama-3 / SmolLM pre-tokenizers) and SentencePiece-style BPE
// (Llama-2 / TinyLlama). Ids match the `tokenizers` library.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ik::io {
class GgufFile;
}

namespace ik::llm {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

class Tokenizer {
 public:
  static Tokenizer from_gguf(const io::GgufFile& f);
  static Tokenizer from_hf_json(const std::string& tokenizer_json_path,
                                const std::string& tokenizer_config_path = "");
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // add_special: prepend BOS when the model asks for it (tokenizer.ggml.add_bos_token).
  // parse_special: recognise special/control tokens written literally (e.g. "<|im_start|>").
  std::vector<int32_t> encode(const std::string& text, bool add_special = false,
                              bool parse_special = true) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The bytes one token stands for (for streaming; may be a partial UTF-8 sequence).
  std::string token_to_piece(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;   // -1 if none
  int32_t eos_id() const;
  // All ids that end generation (eos plus e.g. <|im_end|>, <|eot_id|>).
  const std::vector<int32_t>& stop_ids() const;
  bool is_special(int32_t id) const;

  // The model's chat template applied to messages (ChatML for SmolLM2, Llama-2 [INST],
  // Llama-3 header ids, Zephyr/TinyLlama, ...). Falls back to ChatML when none is declared.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt = true) const;

  // The Jinja template string the model declares ("" if none), and a one-line description
  // for `inferkit info`, e.g. "byte-level BPE (pre smollm), 49152 tokens, 48900 merges, chatml".
  const std::string& chat_template() const;
  std::string summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Assembles UTF-8 output from a stream of token pieces, holding back incomplete sequences.
class Utf8Streamer {
 public:
  std::string push(const std::string& piece);  // returns what is complete so far
  std::string flush();
 private:
  std::string pending_;
};

}  // namespace ik::llm
