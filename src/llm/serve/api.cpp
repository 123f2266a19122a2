#include "llm/serve/api.hpp"

#include <climits>
#include <cmath>
#include <fmt/format.h>

namespace ik::llm::serve {

namespace {

// Field readers: each throws ApiError naming the field when the type or range is wrong.
ApiError bad(const std::string& field, const std::string& what) {
  return ApiError(400, fmt::format("'{}' {}", field, what), field);
}

bool read_bool(const json& j, const char* field, bool fallback) {
  if (!j.contains(field) || j[field].is_null()) return fallback;
  if (!j[field].is_boolean()) throw bad(field, "must be a boolean");
  return j[field].get<bool>();
}

double read_number(const json& j, const char* field, double fallback, double lo, double hi) {
  if (!j.contains(field) || j[field].is_null()) return fallback;
  if (!j[field].is_number()) throw bad(field, "must be a number");
  const double v = j[field].get<double>();
  if (!(v >= lo && v <= hi)) throw bad(field, fmt::format("must be in [{}, {}] (got {})", lo, hi, v));
  return v;
}

// Integers beyond int64 come back from nlohmann as unsigned or float: both are refused or clamped.
int64_t read_int(const json& j, const char* field, int64_t fallback, int64_t lo, int64_t hi) {
  if (!j.contains(field) || j[field].is_null()) return fallback;
  const json& v = j[field];
  if (!v.is_number_integer()) throw bad(field, "must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) return hi;
  const int64_t x = v.get<int64_t>();
  if (x < lo) throw bad(field, fmt::format("must be >= {} (got {})", lo, x));
  return std::min(x, hi);
}

// OpenAI message content: a string, or a list of parts of which only text parts are supported.
std::string read_content(const json& m, size_t i) {
  const std::string field = fmt::format("messages[{}].content", i);
  if (!m.contains("content") || m["content"].is_null()) return "";
  const json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) throw bad(field, "must be a string or a list of text parts");
  std::string text;
  for (const json& part : c) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") || !part["text"].is_string())
      throw bad(field, "parts must be {\"type\": \"text\", \"text\": string}");
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<ChatMessage> read_messages(const json& j) {
  if (!j.contains("messages")) throw bad("messages", "is required");
  const json& ms = j["messages"];
  if (!ms.is_array() || ms.empty()) throw bad("messages", "must be a non-empty list");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < ms.size(); ++i) {
    const json& m = ms[i];
    if (!m.is_object()) throw bad(fmt::format("messages[{}]", i), "must be an object");
    if (!m.contains("role") || !m["role"].is_string()) throw bad(fmt::format("messages[{}].role", i), "must be a string");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant")
      throw bad(fmt::format("messages[{}].role", i), "must be system, user or assistant");
    out.push_back({role, read_content(m, i)});
  }
  return out;
}

void read_prompt(const json& j, CompletionRequest& r) {
  if (!j.contains("prompt")) throw bad("prompt", "is required");
  const json& p = j["prompt"];
  if (p.is_string()) {
    r.prompt = p.get<std::string>();
  } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
    r.prompt = p[0].get<std::string>();
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    for (const json& t : p) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        throw bad("prompt", "token ids must be non-negative integers");
      r.prompt_ids.push_back(int32_t(t.get<int64_t>()));
    }
  } else {
    throw bad("prompt", "must be a string, a list of one string, or a list of token ids");
  }
}

std::vector<std::string> read_stop(const json& j) {
  if (!j.contains("stop") || j["stop"].is_null()) return {};
  const json& s = j["stop"];
  std::vector<std::string> out;
  if (s.is_string()) {
    out.push_back(s.get<std::string>());
  } else if (s.is_array() && s.size() <= 4) {
    for (const json& x : s) {
      if (!x.is_string()) throw bad("stop", "must be a string or a list of up to 4 strings");
      out.push_back(x.get<std::string>());
    }
  } else {
    throw bad("stop", "must be a string or a list of up to 4 strings");
  }
  for (const auto& x : out)
    if (x.empty()) throw bad("stop", "must not contain empty strings");
  return out;
}

}  // namespace

CompletionRequest parse_request(Endpoint endpoint, const std::string& body, uint64_t random_seed) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw ApiError(400, fmt::format("request body is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw ApiError(400, "request body must be a JSON object");
  CompletionRequest r;
  r.endpoint = endpoint;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) throw bad("model", "must be a string");
    r.model = j["model"].get<std::string>();
  }
  if (endpoint == Endpoint::Chat) r.messages = read_messages(j);
  else read_prompt(j, r);
  if (read_int(j, "n", 1, 1, INT_MAX) != 1) throw bad("n", "must be 1 (one choice per request)");
  r.stream = read_bool(j, "stream", false);
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    if (!j["stream_options"].is_object()) throw bad("stream_options", "must be an object");
    r.include_usage = read_bool(j["stream_options"], "include_usage", false);
  }
  // Chat's default is "until done"; completions' is 16 tokens (as OpenAI's).
  const int64_t fallback = endpoint == Endpoint::Chat ? -1 : 16;
  const char* max_field = j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.max_tokens = int(read_int(j, max_field, fallback, 1, INT_MAX));
  r.stop = read_stop(j);
  r.stop_at_eos = !read_bool(j, "ignore_eos", false);
  SamplingParams& s = r.sampling;
  s.temperature = float(read_number(j, "temperature", 1.0, 0.0, 2.0));
  s.top_p = float(read_number(j, "top_p", 1.0, 0.0, 1.0));
  if (s.top_p <= 0) throw bad("top_p", "must be > 0");
  s.top_k = int(read_int(j, "top_k", 0, 0, INT_MAX));      // extension (llama.cpp)
  s.min_p = float(read_number(j, "min_p", 0.0, 0.0, 0.999));  // extension (llama.cpp)
  s.repeat_penalty = 1.0f;
  s.seed = j.contains("seed") && !j["seed"].is_null() ? uint64_t(read_int(j, "seed", 0, INT64_MIN, INT64_MAX))
                                                      : random_seed;
  return r;
}

std::vector<int32_t> prompt_tokens(const CompletionRequest& r, const Tokenizer& tok) {
  if (r.endpoint == Endpoint::Chat) return tok.encode(tok.apply_chat_template(r.messages, true), false, true);
  if (!r.prompt_ids.empty()) {
    for (int32_t t : r.prompt_ids)
      if (t >= tok.vocab_size()) throw bad("prompt", fmt::format("token id {} is outside the vocabulary", t));
    return r.prompt_ids;
  }
  return tok.encode(r.prompt, true, false);
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

static json head_json(const ResponseHead& h, bool chunk) {
  const char* object = h.endpoint == Endpoint::Chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                    : "text_completion";
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

static json finish_json(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

json response_json(const ResponseHead& h, const std::string& text, const std::string& finish_reason, const Usage& u) {
  json j = head_json(h, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_json(finish_reason)}};
  if (h.endpoint == Endpoint::Chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(u);
  return j;
}

json chunk_json(const ResponseHead& h, const std::string& text, const std::string& finish_reason, bool first) {
  json j = head_json(h, true);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_json(finish_reason)}};
  if (h.endpoint == Endpoint::Chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  return j;
}

json usage_chunk_json(const ResponseHead& h, const Usage& u) {
  json j = head_json(h, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(u);
  return j;
}

std::string error_json(const std::string& message, const std::string& type, const std::string& param,
                       const std::string& code) {
  json e = {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}};
  // Replace invalid UTF-8 (a garbage body quoted in a parse error) rather than throw.
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_json(const ApiError& e) { return error_json(e.what(), e.type, e.param, e.code); }

}  // namespace ik::llm::serve
