// The HTTP layer on the tiny random Llama: routes, streaming, errors, over a real socket.
#include <gtest/gtest.h>
#include <omp.h>
#include <thread>

#include "llm/runtime/session.hpp"
#include "llm/serve/api.hpp"
#include "llm/serve/http_server.hpp"
#include "llm/serve/httplib.hpp"

using namespace ik::llm;
using namespace ik::llm::serve;

namespace {

const std::string kDir = IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama";
constexpr int64_t kCtx = 128;

class ServeHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    omp_set_num_threads(1);  // the tiny model gains nothing from more; spinning costs on busy CI
    model_ = new LlamaModel(LlamaModel::from_hf_dir(kDir));
    ref_model_ = new LlamaModel(LlamaModel::from_hf_dir(kDir));
    tok_ = new Tokenizer(Tokenizer::from_hf_json(kDir + "/tokenizer.json", kDir + "/tokenizer_config.json"));
    sched_ = new Scheduler(*model_, *tok_, {.parallel = 2, .n_ctx = kCtx});
    server_ = new HttpServer(*sched_, *tok_, {.host = "127.0.0.1", .port = 0, .model_name = "tiny", .http_threads = 8,
                                             .max_body_bytes = 64 << 10});
    port_ = server_->bind();
    sched_->start();
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    sched_->stop();
    delete thread_;
    delete server_;
    delete sched_;
    delete tok_;
    delete model_;
    delete ref_model_;
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    httplib::Client cli("127.0.0.1", port_);
    return cli.Post(path.c_str(), body, "application/json");
  }
  // Session's greedy text for a prompt (the reference), on a model of its own: the server's
  // belongs to its scheduler thread.
  std::string reference(const std::vector<int32_t>& prompt, int max_tokens) {
    Session s(*ref_model_, *tok_, kCtx);
    s.set_context(prompt);
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.stop_at_eos = false;
    o.sampling.temperature = 0;
    return s.generate(o).text;
  }
  static void expect_error(const httplib::Result& res, int status) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    const auto j = json::parse(res->body);
    EXPECT_TRUE(j["error"]["message"].is_string()) << res->body;
    EXPECT_TRUE(j["error"]["type"].is_string()) << res->body;
  }
  static inline LlamaModel* model_;
  static inline LlamaModel* ref_model_;
  static inline Tokenizer* tok_;
  static inline Scheduler* sched_;
  static inline HttpServer* server_;
  static inline std::thread* thread_;
  static inline int port_ = 0;
};

}  // namespace

TEST_F(ServeHttp, HealthAndModels) {
  httplib::Client cli("127.0.0.1", port_);
  auto h = cli.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  EXPECT_EQ(json::parse(h->body)["slots_total"], 2);
  auto m = cli.Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "tiny");
}

TEST_F(ServeHttp, ChatMatchesSession) {
  auto res = post("/v1/chat/completions",
                  R"({"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 12,
                      "temperature": 0, "ignore_eos": true})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const auto j = json::parse(res->body);
  const auto prompt = tok_->encode(tok_->apply_chat_template({{"user", "Hello there"}}, true), false, true);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], reference(prompt, 12));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], int(prompt.size()));
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
}

TEST_F(ServeHttp, StreamedCompletionEqualsTheWholeOne) {
  const std::string req = R"({"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0, "ignore_eos": true)";
  auto whole = post("/v1/completions", req + "}");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200);
  const std::string text = json::parse(whole->body)["choices"][0]["text"];
  EXPECT_EQ(text, reference(tok_->encode("Once upon a time", true, false), 20));

  auto res = post("/v1/completions", req + R"(, "stream": true, "stream_options": {"include_usage": true}})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  std::string streamed, finish;
  int usage_completion = -1;
  bool done = false;
  size_t at = 0;
  while ((at = res->body.find("data: ", at)) != std::string::npos) {
    const size_t end = res->body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    const std::string data = res->body.substr(at + 6, end - at - 6);
    at = end;
    ASSERT_FALSE(done) << "data after [DONE]";
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    const auto j = json::parse(data);
    EXPECT_EQ(j["object"], "text_completion");
    if (j.contains("usage")) usage_completion = j["usage"]["completion_tokens"];
    if (j["choices"].empty()) continue;
    streamed += j["choices"][0]["text"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(usage_completion, 20);
}

TEST_F(ServeHttp, BadRequestsGetOpenAIErrors) {
  expect_error(post("/v1/chat/completions", "{\"messages\": [}"), 400);
  expect_error(post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})"), 400);
  expect_error(post("/v1/completions", R"({"prompt": "x", "n": 3})"), 400);
  expect_error(post("/v1/completions", R"({"prompt": [100000]})"), 400);
  auto too_long = post("/v1/completions", json{{"prompt", std::vector<int>(kCtx + 5, 7)}}.dump());
  expect_error(too_long, 400);
  EXPECT_EQ(json::parse(too_long->body)["error"]["code"], "context_length_exceeded");
  expect_error(post("/v1/completions", std::string(100 << 10, 'x')), 413);
  expect_error(post("/v1/nothing", "{}"), 404);
  httplib::Client cli("127.0.0.1", port_);
  expect_error(cli.Get("/v1/chat/completions"), 404);
  // Still serving.
  auto ok = post("/v1/completions", R"({"prompt": "a", "max_tokens": 2})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServeHttp, ParallelClientsGetTheirOwnAnswers) {
  const std::vector<std::string> prompts = {"one", "two two", "three three three", "four", "five five"};
  std::vector<std::string> got(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", port_);
      const json body = {{"prompt", prompts[i]}, {"max_tokens", 15}, {"temperature", 0}, {"ignore_eos", true}};
      auto res = cli.Post("/v1/completions", body.dump(), "application/json");
      if (res && res->status == 200) got[i] = json::parse(res->body)["choices"][0]["text"];
    });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i], reference(tok_->encode(prompts[i], true, false), 15));
}
