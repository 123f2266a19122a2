// Parsing and validation of OpenAI requests, and the shape of responses and errors.
#include <gtest/gtest.h>

#include "llm/serve/api.hpp"

using namespace ik::llm::serve;

namespace {

CompletionRequest chat(const std::string& body) { return parse_request(Endpoint::Chat, body, 42); }
CompletionRequest completion(const std::string& body) { return parse_request(Endpoint::Completion, body, 42); }

// The status and the field an invalid body is refused with.
std::pair<int, std::string> refusal(Endpoint ep, const std::string& body) {
  try {
    parse_request(ep, body, 0);
  } catch (const ApiError& e) {
    return {e.status, e.param};
  }
  return {0, "accepted"};
}

const std::string kMsgs = R"("messages": [{"role": "user", "content": "hi"}])";

}  // namespace

TEST(ServeApi, ChatDefaultsAndFields) {
  auto r = chat("{" + kMsgs + "}");
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_TRUE(r.stop_at_eos);

  r = chat(R"({"model": "x", "messages": [{"role": "system", "content": "be brief"},
              {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
              "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 5, "temperature": 0,
              "top_p": 0.5, "seed": 7, "stop": ["x", "yz"], "n": 1, "ignore_eos": true})");
  EXPECT_EQ(r.model, "x");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.seed, 7u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_FALSE(r.stop_at_eos);
  EXPECT_EQ(chat("{" + kMsgs + R"(, "stop": "END"})").stop, std::vector<std::string>{"END"});
  EXPECT_EQ(chat("{" + kMsgs + R"(, "max_completion_tokens": 9})").max_tokens, 9);
}

TEST(ServeApi, CompletionPrompts) {
  auto r = completion(R"({"prompt": "Once upon"})");
  EXPECT_EQ(r.prompt, "Once upon");
  EXPECT_EQ(r.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(completion(R"({"prompt": ["one"]})").prompt, "one");
  EXPECT_EQ(completion(R"({"prompt": [1, 2, 3]})").prompt_ids, (std::vector<int32_t>{1, 2, 3}));
}

TEST(ServeApi, InvalidRequestsNameTheField) {
  using P = std::pair<int, std::string>;
  const auto C = Endpoint::Chat;
  EXPECT_EQ(refusal(C, "{not json"), P(400, ""));
  EXPECT_EQ(refusal(C, "[1, 2]"), P(400, ""));
  EXPECT_EQ(refusal(C, ""), P(400, ""));
  EXPECT_EQ(refusal(C, "{}"), P(400, "messages"));
  EXPECT_EQ(refusal(C, R"({"messages": []})"), P(400, "messages"));
  EXPECT_EQ(refusal(C, R"({"messages": "hi"})"), P(400, "messages"));
  EXPECT_EQ(refusal(C, R"({"messages": [1]})"), P(400, "messages[0]"));
  EXPECT_EQ(refusal(C, R"({"messages": [{"content": "x"}]})"), P(400, "messages[0].role"));
  EXPECT_EQ(refusal(C, R"({"messages": [{"role": "robot", "content": "x"}]})"), P(400, "messages[0].role"));
  EXPECT_EQ(refusal(C, R"({"messages": [{"role": "user", "content": 5}]})"), P(400, "messages[0].content"));
  EXPECT_EQ(refusal(C, R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
            P(400, "messages[0].content"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "max_tokens": "10"})"), P(400, "max_tokens"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "max_tokens": 0})"), P(400, "max_tokens"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "max_tokens": -3})"), P(400, "max_tokens"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "max_tokens": 2.5})"), P(400, "max_tokens"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "temperature": "hot"})"), P(400, "temperature"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "temperature": -0.1})"), P(400, "temperature"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "temperature": 2.5})"), P(400, "temperature"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "top_p": 0})"), P(400, "top_p"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "top_p": 1.5})"), P(400, "top_p"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "n": 2})"), P(400, "n"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "stream": "yes"})"), P(400, "stream"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "stream_options": 1})"), P(400, "stream_options"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "seed": "7"})"), P(400, "seed"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "stop": 3})"), P(400, "stop"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "stop": [""]})"), P(400, "stop"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "stop": ["a","b","c","d","e"]})"), P(400, "stop"));
  EXPECT_EQ(refusal(C, "{" + kMsgs + R"(, "model": 5})"), P(400, "model"));
  const auto T = Endpoint::Completion;
  EXPECT_EQ(refusal(T, "{}"), P(400, "prompt"));
  EXPECT_EQ(refusal(T, R"({"prompt": 5})"), P(400, "prompt"));
  EXPECT_EQ(refusal(T, R"({"prompt": ["a", "b"]})"), P(400, "prompt"));
  EXPECT_EQ(refusal(T, R"({"prompt": [1, -2]})"), P(400, "prompt"));
  EXPECT_EQ(refusal(T, R"({"prompt": [1, "x"]})"), P(400, "prompt"));
  // Huge integers are clamped, not wrapped.
  EXPECT_EQ(completion(R"({"prompt": "a", "max_tokens": 9999999999999999999})").max_tokens, INT_MAX);
}

TEST(ServeApi, ErrorShape) {
  const auto j = json::parse(error_json(ApiError(400, "'n' must be 1", "n")));
  EXPECT_EQ(j["error"]["message"], "'n' must be 1");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "n");
  EXPECT_TRUE(j["error"]["code"].is_null());
  // Invalid UTF-8 in a message does not break the JSON.
  EXPECT_NO_THROW(json::parse(error_json(std::string("bad \xff\xfe byte"))));
}

TEST(ServeApi, ResponseShapes) {
  const ResponseHead chat_head{Endpoint::Chat, "chatcmpl-1", 123, "m"};
  auto j = response_json(chat_head, "hello", "stop", {3, 2});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["total_tokens"], 5);
  auto first = chunk_json(chat_head, "", "", true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  auto last = chunk_json(chat_head, "", "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  auto u = usage_chunk_json(chat_head, {3, 2});
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["completion_tokens"], 2);
  const ResponseHead text_head{Endpoint::Completion, "cmpl-1", 123, "m"};
  EXPECT_EQ(response_json(text_head, "abc", "length", {1, 1})["choices"][0]["text"], "abc");
  EXPECT_EQ(chunk_json(text_head, "ab", "")["object"], "text_completion");
  EXPECT_EQ(chunk_json(text_head, "ab", "")["choices"][0]["text"], "ab");
}
