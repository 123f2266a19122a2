#include "llm/serve/http_server.hpp"

#include <atomic>
#include <ctime>
#include <fmt/format.h>
#include <random>

#include "core/error.hpp"
#include "llm/serve/api.hpp"
#include "llm/serve/httplib.hpp"

namespace ik::llm::serve {

using Clock = std::chrono::steady_clock;

// Without output for this long, a connection gets a heartbeat (a space before the JSON, a
// comment line in a stream): writing is how a closed connection is noticed.
constexpr auto kHeartbeat = std::chrono::milliseconds(1000);

static std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
static std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

// One response body, written by httplib's chunked content provider as the job produces text.
struct Reply {
  std::shared_ptr<Job> job;
  ResponseHead head;
  bool stream = false, include_usage = false;
  bool started = false;
  std::string text;  // non-streaming: the text so far
  Clock::time_point last_write = Clock::now();

  // One provider call: wait for text, write it. False ends the connection (client gone).
  bool pump(httplib::DataSink& sink) {
    std::string delta;
    const bool done = job->wait(kHeartbeat, delta);
    std::string out;
    if (stream) {
      if (!started && head.endpoint == Endpoint::Chat) out += sse(chunk_json(head, "", "", true));
      started = true;
      if (!delta.empty()) out += sse(chunk_json(head, delta, ""));
      if (done) out += stream_end();
    } else {
      text += delta;
      if (done) out = body();
    }
    const bool heartbeat = out.empty() && Clock::now() - last_write >= kHeartbeat;
    if (heartbeat) out = stream ? ": keep-alive\n\n" : " ";
    if (!out.empty()) {
      if (!sink.write(out.data(), out.size())) return false;
      last_write = Clock::now();
    }
    if (done) sink.done();
    return true;
  }

  Usage usage() const {
    const JobResult& r = job->result();
    return {r.prompt_tokens, int(r.tokens.size())};
  }

  std::string stream_end() const {
    const JobResult& r = job->result();
    if (r.finish_reason == "error") return sse(json::parse(error_json(r.error, "server_error"))) + "data: [DONE]\n\n";
    std::string out = sse(chunk_json(head, "", r.finish_reason));
    if (include_usage) out += sse(usage_chunk_json(head, usage()));
    return out + "data: [DONE]\n\n";
  }

  std::string body() const {
    const JobResult& r = job->result();
    if (r.finish_reason == "error") return error_json(r.error, "server_error");
    return dump(response_json(head, text, r.finish_reason, usage()));
  }
};

struct HttpServer::Impl {
  Scheduler& scheduler;
  const Tokenizer& tok;
  ServerOptions opt;
  httplib::Server svr;
  std::atomic<uint64_t> requests{0};
  uint64_t seed_base = std::random_device{}();

  Impl(Scheduler& s, const Tokenizer& t, ServerOptions o) : scheduler(s), tok(t), opt(std::move(o)) { routes(); }

  void routes() {
    const int threads = opt.http_threads;
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    svr.set_payload_max_length(opt.max_body_bytes);
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { completion(Endpoint::Chat, req, res); });
    });
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { completion(Endpoint::Completion, req, res); });
    });
    // Everything httplib refuses itself (unknown route 404, body too large 413, bad request
    // line 400) gets OpenAI's error shape too.
    svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string message = fmt::format("HTTP {}", res.status);
      if (res.status == 404) message = fmt::format("unknown route: {} {}", req.method, req.path);
      if (res.status == 413) message = "request body too large";
      res.set_content(error_json(message, res.status >= 500 ? "server_error" : "invalid_request_error"),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(error_json("internal error", "server_error"), "application/json");
    });
  }

  template <class F>
  void guarded(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const ApiError& e) {
      res.status = e.status;
      res.set_content(error_json(e), "application/json");
    } catch (const Error& e) {  // the scheduler refusing a request
      res.status = 400;
      res.set_content(error_json(e.what()), "application/json");
    }
  }

  void completion(Endpoint ep, const httplib::Request& req, httplib::Response& res) {
    const uint64_t n = requests++;
    const CompletionRequest r = parse_request(ep, req.body, seed_base + n * 0x9E3779B97F4A7C15ull);
    std::vector<int32_t> prompt = prompt_tokens(r, tok);
    const char* prompt_field = ep == Endpoint::Chat ? "messages" : "prompt";
    if (prompt.empty()) throw ApiError(400, "the prompt is empty", prompt_field);
    const int64_t n_ctx = scheduler.options().n_ctx;
    if (int64_t(prompt.size()) >= n_ctx)
      throw ApiError(400, fmt::format("the prompt is {} tokens; this server's context is {}", prompt.size(), n_ctx),
                     prompt_field, "invalid_request_error", "context_length_exceeded");
    auto job = scheduler.try_submit({.prompt = std::move(prompt),
                                     .max_tokens = r.max_tokens,
                                     .stop = r.stop,
                                     .stop_at_eos = r.stop_at_eos,
                                     .sampling = r.sampling});
    if (!job) throw ApiError(503, "the server is busy (too many requests waiting); retry later", "", "server_error");
    auto reply = std::make_shared<Reply>();
    reply->job = job;
    reply->head = {ep, fmt::format("{}-{:x}", ep == Endpoint::Chat ? "chatcmpl" : "cmpl", seed_base ^ n), int64_t(std::time(nullptr)),
                   opt.model_name};
    reply->stream = r.stream;
    reply->include_usage = r.include_usage;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        r.stream ? "text/event-stream" : "application/json",
        [reply](size_t, httplib::DataSink& sink) { return reply->pump(sink); },
        [job](bool success) {
          if (!success) job->cancel();  // the client went away: free the slot
        });
  }

  void health(httplib::Response& res) {
    const auto s = scheduler.stats();
    const json j = {{"status", "ok"},
                    {"slots_active", s.active},
                    {"slots_total", scheduler.options().parallel},
                    {"queued", s.queued},
                    {"steps", s.steps},
                    {"tokens_generated", s.generated}};
    res.set_content(dump(j), "application/json");
  }

  void models(httplib::Response& res) {
    const json model = {{"id", opt.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "inferkit"}};
    res.set_content(dump({{"object", "list"}, {"data", json::array({model})}}), "application/json");
  }
};

HttpServer::HttpServer(Scheduler& scheduler, const Tokenizer& tok, ServerOptions opt)
    : impl_(std::make_unique<Impl>(scheduler, tok, std::move(opt))) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  auto& o = impl_->opt;
  const int port = o.port == 0 ? impl_->svr.bind_to_any_port(o.host) : (impl_->svr.bind_to_port(o.host, o.port) ? o.port : -1);
  IK_CHECK(port > 0, "cannot listen on {}:{} (address in use or not available)", o.host, o.port);
  return port;
}

void HttpServer::run() { impl_->svr.listen_after_bind(); }

void HttpServer::stop() { impl_->svr.stop(); }

}  // namespace ik::llm::serve
