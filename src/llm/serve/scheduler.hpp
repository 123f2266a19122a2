#pragma once
// Continuous batching. One thread owns the model and up to `parallel` slots, each a sequence
// with its own KV cache. Every step admits waiting requests into free slots, then runs one
// forward pass over one token of every running sequence plus up to `prefill_chunk` prompt
// tokens of the new ones (oldest prompt first; several short prompts share a step). Requests
// join and leave between steps, so a long prompt delays the running streams by one chunk per
// step, never by its whole length. The model is an Engine (engine.hpp): the CPU engine runs
// a step as one forward pass, the GPU engine as prompt chunks plus one captured decode step,
// the speculative engine as one tree verification per slot (a step may then yield several
// tokens of a sequence; the stop rules apply to each in turn).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"
#include "llm/serve/engine.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm::serve {

struct GenRequest {
  std::vector<int32_t> prompt;
  int max_tokens = -1;            // -1: until a stop condition or the context is full
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool stop_at_eos = true;
  SamplingParams sampling;
};

struct JobResult {
  std::string finish_reason;  // "stop" (EOS or stop string), "length", "cancelled", "error"
  std::string error;          // with "error"
  int prompt_tokens = 0;
  std::vector<int32_t> tokens;  // generated (EOS excluded)
  std::string text;             // all text streamed
};

// One request as both sides see it: the scheduler streams text into it, the client side
// waits for that text and may cancel.
class Job {
 public:
  explicit Job(GenRequest r) : request(std::move(r)) {}
  const GenRequest request;

  // Waits up to `timeout` for new text or the end, and appends the new text to `out`.
  // Returns true once the job has finished and all its text was taken.
  bool wait(std::chrono::milliseconds timeout, std::string& out);
  const JobResult& result() const { return result_; }  // complete once wait() returned true
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Scheduler side.
  void emit(const std::string& text);
  void finish(JobResult r);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool done_ = false;
  JobResult result_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int parallel = 4;            // slots: sequences decoded together
  int64_t n_ctx = 2048;        // context of each slot
  int64_t prefill_chunk = 128;  // prompt tokens prefilled per step (all new prompts together)
  size_t max_queue = 256;      // waiting requests beyond the slots
};

class Scheduler {
 public:
  Scheduler(LlamaModel& model, const Tokenizer& tok, SchedulerOptions opt);  // the CPU engine
  // The GPU engine on sequences 0..parallel-1 of `model` (which needs at least `parallel`
  // sequences of n_ctx positions). Greedy output equals the CPU engine's up to near-ties
  // (bf16 activations); seeded draws differ from the CPU's (another random stream).
  Scheduler(GpuLlama& model, const Tokenizer& tok, SchedulerOptions opt);
  Scheduler(std::unique_ptr<Engine> engine, const Tokenizer& tok, SchedulerOptions opt);
  ~Scheduler();  // stops the thread; unfinished jobs end as "cancelled"
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; null when the queue is full. Throws ik::Error for a request that can
  // never run (empty prompt, prompt not shorter than the context, bad sampling values).
  std::shared_ptr<Job> try_submit(GenRequest r);

  void start();  // run steps on a background thread until stop()
  void stop();   // joins the thread; jobs still queued or running end as "cancelled"
  // One step on the caller's thread (tests, or start()'s loop). False when there was nothing to do.
  bool step();

  struct Stats {
    int active = 0, queued = 0;
    uint64_t steps = 0, generated = 0;
  };
  Stats stats() const;
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Slot;
  void admit_waiting();
  void drop_cancelled();
  bool forward_step();
  void accept_tokens(Slot& s, const std::vector<int32_t>& tokens);
  void accept_token(Slot& s, int32_t token, int64_t n_past);
  void finish(Slot& s, std::string reason, bool flush_text, std::string error = "");
  void run();

  std::unique_ptr<Engine> engine_;
  std::thread::id engine_thread_;  // the thread the engine was last bound to
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t admissions_ = 0;

  mutable std::mutex mu_;  // guards queue_, stopping_ and the counters below
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  int active_ = 0;
  uint64_t steps_ = 0, generated_ = 0;
  std::thread thread_;
};

}  // namespace ik::llm::serve
