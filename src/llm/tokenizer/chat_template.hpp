#pragma once
// Chat templates: the families llama.cpp recognises from a model's Jinja template string
// (tokenizer.chat_template), rendered natively like `transformers` renders the Jinja.
#include <string>
#include <vector>

#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm {

enum class ChatFamily {
  kChatML,  // <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen, ...); also the fallback
  kLlama2,  // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kZephyr,  // <|user|>\n...</s>\n (TinyLlama-Chat, Zephyr)
};

ChatFamily detect_chat_family(const std::string& jinja_template);
const char* chat_family_name(ChatFamily f);

// The ChatML system prompt a template inserts when the conversation has none (SmolLM2:
// "You are a helpful AI assistant named SmolLM, trained by Hugging Face"), or "".
std::string chatml_default_system(const std::string& jinja_template);

// Renders `messages` in the family of `jinja_template` (ChatML when it is empty or unknown).
// bos_text / eos_text are the vocabulary's BOS and EOS strings (used by Llama-2 / Zephyr / Llama-3).
std::string render_chat_template(const std::string& jinja_template,
                                 const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_text,
                                 const std::string& eos_text);

}  // namespace ik::llm
