#include "llm/tokenizer/chat_template.hpp"

#include "core/error.hpp"
#include "llm/tokenizer/unicode.hpp"

namespace ik::llm {

namespace {

bool contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

// Python's str.isspace(): Unicode White_Space plus the separators U+001C..U+001F.
bool python_space(uint32_t cp) { return unicode::is_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

// Jinja's str.strip() / |trim: Python whitespace removed at both ends.
std::string strip(const std::string& s) {
  size_t begin = 0, end = 0;  // [begin, end): the span between leading and trailing spaces
  bool seen_text = false;
  for (size_t i = 0; i < s.size();) {
    const size_t len = unicode::utf8_len(s, i);
    const bool space = python_space(unicode::utf8_decode(s, i, len));
    if (!space) {
      if (!seen_text) begin = i;
      seen_text = true;
      end = i + len;
    }
    i += len;
  }
  return seen_text ? s.substr(begin, end - begin) : "";
}

std::string render_chatml(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                          bool add_generation_prompt) {
  std::string out;
  const std::string default_system = chatml_default_system(tmpl);
  if (!default_system.empty() && !messages.empty() && messages[0].role != "system")
    out += "<|im_start|>system\n" + default_system + "<|im_end|>\n";
  for (const ChatMessage& m : messages)
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// Meta's Llama-2-chat template: the system prompt goes inside the first [INST], user and
// assistant turns must alternate, contents are stripped; there is no generation prompt.
std::string render_llama2(const std::vector<ChatMessage>& messages, const std::string& bos,
                          const std::string& eos) {
  size_t first = 0;
  std::string system;
  bool has_system = false;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    has_system = true;
    first = 1;
  }
  std::string out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool expect_user = (i - first) % 2 == 0;
    IK_CHECK((m.role == "user") == expect_user,
             "Conversation roles must alternate user/assistant/user/assistant/...");
    std::string content = m.content;
    if (i == first && has_system)
      content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content;
    if (m.role == "user") {
      out.append(bos).append("[INST] ").append(strip(content)).append(" [/INST]");
    } else if (m.role == "assistant") {
      out.append(" ").append(strip(content)).append(" ").append(eos);
    }
  }
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          const std::string& bos) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos;
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" +
           strip(messages[i].content) + "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// TinyLlama-1.1B-Chat / Zephyr: each known role as <|role|>\n content eos \n.
std::string render_zephyr(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          const std::string& eos) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || m.role == "system" || m.role == "assistant")
      out += "<|" + m.role + "|>\n" + m.content + eos + "\n";
    if (i + 1 == messages.size() && add_generation_prompt) out += "<|assistant|>\n";
  }
  return out;
}

}  // namespace

ChatFamily detect_chat_family(const std::string& t) {
  if (contains(t, "<|im_start|>")) return ChatFamily::kChatML;
  if (contains(t, "<|start_header_id|>") && contains(t, "<|end_header_id|>"))
    return ChatFamily::kLlama3;
  if (contains(t, "[INST]")) return ChatFamily::kLlama2;
  if (contains(t, "<|user|>") && contains(t, "<|assistant|>")) return ChatFamily::kZephyr;
  return ChatFamily::kChatML;
}

const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kChatML: return "chatml";
    case ChatFamily::kLlama2: return "llama2";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kZephyr: return "zephyr";
  }
  return "?";
}

std::string chatml_default_system(const std::string& tmpl) {
  // The literal "<|im_start|>system\n<prompt><|im_end|>" that the template emits itself
  // (guarded by a check that messages[0] is not a system message).
  if (!contains(tmpl, "!= 'system'") && !contains(tmpl, "!= \"system\"")) return "";
  for (const char* newline : {"\n", "\\n"}) {
    const std::string head = std::string("<|im_start|>system") + newline;
    const size_t a = tmpl.find(head);
    if (a == std::string::npos) continue;
    const size_t begin = a + head.size();
    const size_t end = tmpl.find("<|im_end|>", begin);
    if (end == std::string::npos) continue;
    std::string prompt = tmpl.substr(begin, end - begin);
    // A prompt that is Jinja code (e.g. "' + message['content'] + '") is not a literal.
    if (contains(prompt, "'") || contains(prompt, "\"") || contains(prompt, "{")) continue;
    return prompt;
  }
  return "";
}

std::string render_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_text,
                                 const std::string& eos_text) {
  switch (detect_chat_family(tmpl)) {
    case ChatFamily::kChatML: return render_chatml(tmpl, messages, add_generation_prompt);
    case ChatFamily::kLlama2: return render_llama2(messages, bos_text, eos_text);
    case ChatFamily::kLlama3: return render_llama3(messages, add_generation_prompt, bos_text);
    case ChatFamily::kZephyr: return render_zephyr(messages, add_generation_prompt, eos_text);
  }
  return "";
}

}  // namespace ik::llm
