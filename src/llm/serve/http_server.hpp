#pragma once
// The OpenAI-compatible HTTP front of the scheduler (cpp-httplib): routes, request
// validation, streaming by server-sent events, and cancellation when a client goes away.
//   POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health
#include <memory>
#include <string>

#include "llm/serve/scheduler.hpp"

namespace ik::llm::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (see HttpServer::bind)
  std::string model_name = "inferkit";
  int http_threads = 128;        // connections served at once (a stream holds one for its life)
  size_t max_body_bytes = 1 << 20;
};

class HttpServer {
 public:
  // The scheduler must be started (or stepped by someone) for requests to complete.
  HttpServer(Scheduler& scheduler, const Tokenizer& tok, ServerOptions opt);
  ~HttpServer();
  // Binds the listening socket; returns the port. Throws ik::Error when it cannot.
  int bind();
  void run();   // serves until stop(); bind() first
  void stop();  // from any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ik::llm::serve
