#pragma once
// The OpenAI wire format: requests for /v1/chat/completions and /v1/completions parsed and
// validated into a CompletionRequest, and the response, stream chunk and error JSON.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "llm/runtime/sampler.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm::serve {

using nlohmann::json;

// A request the server refuses: an HTTP status and OpenAI's error body.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = "",
           std::string type = "invalid_request_error", std::string code = "")
      : std::runtime_error(message), status(status), param(std::move(param)), type(std::move(type)),
        code(std::move(code)) {}
  int status;
  std::string param, type, code;
};

enum class Endpoint { Chat, Completion };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::Chat;
  std::string model;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completion: text ...
  std::vector<int32_t> prompt_ids;    // ... or token ids
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  int max_tokens = -1;                // -1: until a stop condition or the context is full
  std::vector<std::string> stop;
  bool stop_at_eos = true;            // false with the extension "ignore_eos": true
  SamplingParams sampling;            // OpenAI defaults: temperature 1, top_p 1, no top-k/min-p
};

// Parses and validates a request body. Throws ApiError (status 400) naming the bad field.
// `random_seed` is used when the request gives no seed.
CompletionRequest parse_request(Endpoint endpoint, const std::string& body, uint64_t random_seed);

// The prompt as tokens: the chat template for chat, BOS + text for completions.
std::vector<int32_t> prompt_tokens(const CompletionRequest& r, const Tokenizer& tok);

struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
};

// What every response and chunk of one request shares.
struct ResponseHead {
  Endpoint endpoint = Endpoint::Chat;
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;
  std::string model;
};

json usage_json(const Usage& u);
json response_json(const ResponseHead& h, const std::string& text, const std::string& finish_reason, const Usage& u);
// A stream chunk with a piece of text; finish_reason "" for all but the last. For chat, the
// first chunk (first = true) carries the role.
json chunk_json(const ResponseHead& h, const std::string& text, const std::string& finish_reason, bool first = false);
// The extra last chunk of stream_options.include_usage: no choices, the usage.
json usage_chunk_json(const ResponseHead& h, const Usage& u);
std::string error_json(const std::string& message, const std::string& type = "invalid_request_error",
                       const std::string& param = "", const std::string& code = "");
std::string error_json(const ApiError& e);

}  // namespace ik::llm::serve
