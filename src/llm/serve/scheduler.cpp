#include "llm/serve/scheduler.hpp"

#include <algorithm>
#include <omp.h>

#include "core/error.hpp"
#include "llm/runtime/stop_strings.hpp"

namespace ik::llm::serve {

bool Job::wait(std::chrono::milliseconds timeout, std::string& out) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return done_ || !pending_.empty(); });
  out += pending_;
  pending_.clear();
  return done_;
}

void Job::emit(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard lock(mu_);
    pending_ += text;
  }
  cv_.notify_all();
}

void Job::finish(JobResult r) {
  {
    std::lock_guard lock(mu_);
    result_ = std::move(r);
    done_ = true;
  }
  cv_.notify_all();
}

// The result of a job cancelled before it reached a slot.
static JobResult never_run(const Job& job) {
  JobResult r;
  r.finish_reason = "cancelled";
  r.prompt_tokens = int(job.request.prompt.size());
  return r;
}

// A sequence in flight on engine slot `index`: the text produced so far (the engine holds its
// cache and its sampler).
struct Scheduler::Slot {
  int index = 0;
  std::shared_ptr<Job> job;  // null: free
  bool fresh = false;        // admitted, the engine slot not yet reset for it
  uint64_t admitted = 0;     // admission order (oldest prompt prefills first)
  size_t prefilled = 0;      // prompt tokens in the cache
  std::vector<int32_t> history;  // prompt + tokens fed to the model (for the repetition penalty)
  Utf8Streamer utf8;
  JobResult result;
  size_t emitted = 0;        // bytes of result.text sent to the job
  int32_t next = -1;         // sampled, not yet in the cache

  bool prefilling() const { return job && prefilled < job->request.prompt.size(); }
  bool decoding() const { return job && !prefilling(); }
};

static const SchedulerOptions& checked(const SchedulerOptions& opt) {
  IK_CHECK(opt.parallel >= 1, "parallel must be >= 1 (got {})", opt.parallel);
  IK_CHECK(opt.n_ctx >= 2, "context must be >= 2 (got {})", opt.n_ctx);
  IK_CHECK(opt.prefill_chunk >= 1, "prefill chunk must be >= 1 (got {})", opt.prefill_chunk);
  return opt;
}

Scheduler::Scheduler(LlamaModel& model, const Tokenizer& tok, SchedulerOptions opt)
    : Scheduler(make_cpu_engine(model, checked(opt).parallel, opt.n_ctx), tok, opt) {}

Scheduler::Scheduler(GpuLlama& model, const Tokenizer& tok, SchedulerOptions opt)
    : Scheduler(make_gpu_engine(model, checked(opt).parallel, opt.n_ctx), tok, opt) {}

Scheduler::Scheduler(std::unique_ptr<Engine> engine, const Tokenizer& tok, SchedulerOptions opt)
    : engine_(std::move(engine)), tok_(tok), opt_(checked(opt)) {
  for (int i = 0; i < opt.parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->index = i;
  }
}

Scheduler::~Scheduler() { stop(); }

std::shared_ptr<Job> Scheduler::try_submit(GenRequest r) {
  IK_CHECK(!r.prompt.empty(), "empty prompt");
  IK_CHECK(int64_t(r.prompt.size()) < opt_.n_ctx, "prompt is {} tokens, which does not fit the context of {}",
           r.prompt.size(), opt_.n_ctx);
  IK_CHECK(r.max_tokens == -1 || r.max_tokens > 0, "max tokens must be > 0 or -1 (got {})", r.max_tokens);
  for (const auto& s : r.stop) IK_CHECK(!s.empty(), "stop strings must not be empty");
  r.sampling.validate();
  engine_->check(r.sampling);
  auto job = std::make_shared<Job>(std::move(r));
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= opt_.max_queue) return nullptr;
    queue_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

void Scheduler::admit_waiting() {
  std::lock_guard lock(mu_);
  for (auto& s : slots_) {
    while (!s->job && !queue_.empty()) {
      auto job = std::move(queue_.front());
      queue_.pop_front();
      if (job->cancelled()) {
        job->finish(never_run(*job));
        continue;
      }
      s->job = std::move(job);
      s->admitted = admissions_++;
      s->fresh = true;
      s->prefilled = 0;
      s->history = s->job->request.prompt;
      s->utf8 = Utf8Streamer();
      s->result = JobResult();
      s->result.prompt_tokens = int(s->history.size());
      s->emitted = 0;
      ++active_;
    }
  }
}

void Scheduler::drop_cancelled() {
  for (auto& s : slots_)
    if (s->job && s->job->cancelled()) finish(*s, "cancelled", false);
}

// One engine step (chunked prefill mixed with decode, as vLLM schedules): one token for every
// decoding sequence, then prompt chunks of the sequences still prefilling, oldest first, up to
// prefill_chunk prompt tokens in all. So several short prompts are prefilled together, a long
// one a chunk per step, and running streams gain a token every step.
bool Scheduler::forward_step() {
  if (std::this_thread::get_id() != engine_thread_) {  // start()'s thread, or the caller's
    engine_->bind_to_thread();
    engine_thread_ = std::this_thread::get_id();
  }
  for (auto& s : slots_)
    if (s->job && s->fresh) {
      engine_->reset(s->index, s->job->request.sampling);
      s->fresh = false;
    }
  std::vector<EngineRun> runs;
  std::vector<Slot*> owners;
  for (auto& s : slots_)
    if (s->decoding()) {
      s->history.push_back(s->next);
      runs.push_back({s->index, &s->next, 1, true, &s->history});
      owners.push_back(s.get());
    }
  std::vector<Slot*> waiting;
  for (auto& s : slots_)
    if (s->prefilling()) waiting.push_back(s.get());
  std::sort(waiting.begin(), waiting.end(), [](Slot* a, Slot* b) { return a->admitted < b->admitted; });
  int64_t budget = opt_.prefill_chunk;
  for (Slot* s : waiting) {
    if (budget == 0) break;
    const auto& prompt = s->job->request.prompt;
    const int64_t m = std::min<int64_t>(budget, int64_t(prompt.size() - s->prefilled));
    runs.push_back({s->index, prompt.data() + s->prefilled, m, s->prefilled + m == prompt.size(), &s->history});
    owners.push_back(s);
    budget -= m;
  }
  if (runs.empty()) return false;

  std::vector<std::vector<int32_t>> drawn;
  engine_->step(runs, drawn);
  size_t next_drawn = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    Slot& s = *owners[i];
    if (s.prefilling()) s.prefilled += runs[i].n;
    if (runs[i].samples) accept_tokens(s, drawn[next_drawn++]);
  }
  return true;
}

// A run's tokens one by one, as if a plain engine had drawn them in successive steps: all but
// the last are already in the cache (a speculative engine's accepted draft), and the stop rules
// may end the request after any of them (the rest is dropped with the slot).
void Scheduler::accept_tokens(Slot& s, const std::vector<int32_t>& tokens) {
  const int64_t n_past = engine_->n_past(s.index);
  for (size_t j = 0; j < tokens.size() && s.job; ++j) {
    const bool in_cache = j + 1 < tokens.size();
    accept_token(s, tokens[j], n_past - int64_t(tokens.size() - 1 - j));
    if (in_cache) s.history.push_back(tokens[j]);
  }
}

// The same stop rules as Session::generate: EOS, stop strings (cut, with a held-back tail),
// max_tokens, a full context (n_past: the rows the cache held when `token` was drawn).
void Scheduler::accept_token(Slot& s, int32_t token, int64_t n_past) {
  const GenRequest& req = s.job->request;
  const auto& stop_ids = tok_.stop_ids();
  if (req.stop_at_eos && std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    finish(s, "stop", true);
    return;
  }
  {
    std::lock_guard lock(mu_);
    ++generated_;
  }
  JobResult& r = s.result;
  r.tokens.push_back(token);
  r.text += s.utf8.push(tok_.token_to_piece(token));
  const bool stopped = cut_at_stop(r.text, s.emitted, req.stop);
  const size_t safe = stopped ? r.text.size() : r.text.size() - stop_hold_back(r.text, req.stop);
  if (safe > s.emitted) {
    s.job->emit(r.text.substr(s.emitted, safe - s.emitted));
    s.emitted = safe;
  }
  if (stopped) {
    finish(s, "stop", false);
  } else if (int(r.tokens.size()) == req.max_tokens || n_past + 1 >= opt_.n_ctx) {
    finish(s, "length", true);
  } else {
    s.next = token;
  }
}

void Scheduler::finish(Slot& s, std::string reason, bool flush_text, std::string error) {
  JobResult& r = s.result;
  // Text held back for a possible stop string, or an incomplete UTF-8 tail, is sent at the end
  // unless a stop string ended the text.
  if (flush_text) {
    r.text += s.utf8.flush();
    if (r.text.size() > s.emitted) s.job->emit(r.text.substr(s.emitted));
  } else {
    r.text.resize(s.emitted);
  }
  r.finish_reason = std::move(reason);
  r.error = std::move(error);
  s.job->finish(std::move(r));
  s.job.reset();
  std::lock_guard lock(mu_);
  --active_;
}

bool Scheduler::step() {
  admit_waiting();
  drop_cancelled();
  bool worked = false;
  try {
    worked = forward_step();
  } catch (const std::exception& e) {  // a failed step fails its sequences, not the server
    for (auto& s : slots_)
      if (s->job) finish(*s, "error", false, e.what());
  }
  std::lock_guard lock(mu_);
  if (worked) ++steps_;
  return worked;
}

void Scheduler::run() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    if (step()) continue;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || active_ > 0; });
    if (stopping_) return;
  }
}

void Scheduler::start() {
  IK_CHECK(!thread_.joinable(), "scheduler already started");
  // OpenMP's thread count is per thread: the caller's setting (e.g. --threads) must be
  // carried over to the thread that runs the model.
  const int omp_threads = omp_get_max_threads();
  thread_ = std::thread([this, omp_threads] {
    omp_set_num_threads(omp_threads);
    run();
  });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Nobody steps any more: end what is left so no client waits forever.
  for (auto& s : slots_)
    if (s->job) finish(*s, "cancelled", false);
  std::lock_guard lock(mu_);
  for (auto& job : queue_) job->finish(never_run(*job));
  queue_.clear();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  return {.active = active_, .queued = int(queue_.size()), .steps = steps_, .generated = generated_};
}

}  // namespace ik::llm::serve
