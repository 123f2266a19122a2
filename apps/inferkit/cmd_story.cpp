// inferkit story: storytelling as inverse inverse planning (docs/story.md). Searches for the
// turns of a two-character gridworld story that make a Bayesian observer believe what the
// chosen effect asks for, prints it, renders it and compares it with naive planners.
#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <omp.h>

#include "command.hpp"
#include "core/error.hpp"
#include "prob/story/render.hpp"
#include "prob/story/search.hpp"

namespace {

using namespace ik::story;
using Clock = std::chrono::steady_clock;

struct StoryArgs {
  std::string effect, out = "story_out", cache = default_cache_dir();
  int length = 0, beam = 500, cuts = 0, baseline = 20;
  uint64_t seed = 1;
  bool deus = false, render = true, use_cache = true;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void print_story(const World& w, const Trace& t) {
  fmt::print("start (A = cheese, B = robot, r = box):\n");
  std::string map = w.to_string(t.s0);
  for (size_t p = 0; p < map.size(); p = map.find('\n', p) + 1) fmt::print("  {}\n", map.substr(p, map.find('\n', p) - p));
  fmt::print("turn  {:<38} P(help) P(hinder) P(indiff) P(rational)\n", "what happens");
  auto row = [&](const std::string& label, const std::string& what, const Belief& b) {
    fmt::print("{:>4}  {:<38} {:7.3f} {:9.3f} {:9.3f} {:11.3f}\n", label, what, pr_help(b), pr_hinder(b),
               pr_indifferent(b), pr_rational(b));
  };
  row("", "(prior)", t.beliefs[0]);
  for (size_t k = 0; k < t.turns.size(); ++k) {
    const bool idle_deus = t.turns[k].deus >= 0 && t.states[2 * k] == t.state_before(int(2 * k));
    row(fmt::format("{}", k + 1), idle_deus ? "deus ex machina: nothing happens" : turn_to_string(t.turns[k]),
        t.beliefs[2 * k + 2]);
  }
}

void run_story(const StoryArgs& a, bool length_given, bool cuts_given) {
  const Effect effect = parse_effect(a.effect);
  SearchOptions opt;
  opt.effect = effect;
  opt.length = length_given ? a.length : effect_defaults(effect).length;
  opt.cuts = cuts_given ? a.cuts : effect_defaults(effect).cuts;
  opt.starts = a.beam;
  opt.deus = a.deus;
  opt.seed = a.seed;

  const World w;
  const auto t_plan = Clock::now();
  bool loaded = false;
  const std::string cache = a.use_cache ? a.cache : "";
  const Tables tables = plan_all(w, cache, {}, &loaded);
  const double plan_s = seconds_since(t_plan);
  const Observer o(tables);
  fmt::print("story: {}, {} turns, {} starts x {} kept per step{}, seed {}\n", a.effect, opt.length, opt.starts, opt.cuts,
             opt.deus ? ", deus ex machina turns on" : "", opt.seed);
  fmt::print("planning: {} states, 2 + {} value tables, {} in {:.2f} s{}\n", w.num_states(), tables.num_b,
             loaded ? "read the cached values and redid the last sweep" : "201 sweeps each", plan_s,
             cache.empty() ? "" : fmt::format(" (cache {})", cache));

  const auto t_search = Clock::now();
  const Story story = search(w, o, opt);
  const double search_s = seconds_since(t_search);
  const long candidates = long(opt.starts) * opt.length * opt.cuts * long(all_turns(opt.deus).size());
  fmt::print("search: at most {} candidate turns scored in {:.2f} s on {} threads\n", candidates, search_s,
             omp_get_max_threads());
  std::vector<Turn> shown = story.turns;
  if (is_flashback(effect)) shown.push_back(flash_turn);  // scored as the story's coda; show it
  const Trace trace = replay(w, o, story.s0, shown);
  print_story(w, trace);
  if (is_flashback(effect)) fmt::print("(turn {} is the flashback: B pushes A)\n", shown.size());
  fmt::print("objective {:.4f}", story.score);
  if (a.baseline > 0) {
    double sum = 0;
    for (int k = 0; k < a.baseline; ++k) sum += naive_story(w, o, effect, opt.length, a.seed * 1000 + k).score;
    const double naive = sum / a.baseline;
    fmt::print("  naive planners ({} seeds) {:.4f}  ratio {:.3f}", a.baseline, naive, story.score / naive);
  }
  fmt::print("\n");
  if (!a.render) return;
  std::filesystem::create_directories(a.out);
  const auto path = [&](const char* name) { return (std::filesystem::path(a.out) / name).string(); };
  save_strip(path("story.png"), w, trace);
  save_gif(path("story.gif"), w, trace);
  save_belief_plot(path("beliefs.png"), trace, fmt::format("{} (objective {:.2f})", a.effect, story.score));
  fmt::print("wrote {}, {}, {}\n", path("story.png"), path("story.gif"), path("beliefs.png"));
}

void add_story(CLI::App& app) {
  auto a = std::make_shared<StoryArgs>();
  auto* c = app.add_subcommand("story", "Tell a gridworld story by inverse inverse planning (Chandra et al. 2024)");
  std::string effects;
  for (const auto& n : effect_names()) effects += (effects.empty() ? "" : ", ") + n;
  c->footer("Effects: " + effects +
            ".\nExample: inferkit story --effect help-then-hinder --length 15 --beam 500 --seed 1 --out out/story");
  c->add_option("--effect,-e", a->effect, "what the audience should come to believe (see the list below)")->required();
  auto* length = c->add_option("--length,-n", a->length, "turns (default: 15; irony, cinderella 25; flashback 3)")
                     ->check(CLI::Range(1, 1000));
  c->add_option("--beam,-b", a->beam, "random start states searched")->check(CLI::Range(1, 1000000))->capture_default_str();
  auto* cuts = c->add_option("--cuts", a->cuts, "stories kept per start after each turn (default 1; flashback 100)")
                   ->check(CLI::Range(1, 100000));
  c->add_option("--seed,-s", a->seed, "random seed for the start states")->capture_default_str();
  c->add_flag("--deus", a->deus, "deus ex machina: 5 extra turns that drop the box onto the floor");
  c->add_option("--baseline", a->baseline, "naive-planner stories to average for comparison (0: none)")
      ->check(CLI::Range(0, 100000))->capture_default_str();
  c->add_option("--out,-o", a->out, "folder for story.png, story.gif, beliefs.png")->capture_default_str();
  c->add_flag("!--no-render", a->render, "print only");
  c->add_option("--cache", a->cache, "folder for the cached value tables")->capture_default_str();
  c->add_flag("!--no-cache", a->use_cache, "plan from scratch and keep nothing");
  c->callback([a, length, cuts] { run_story(*a, length->count() > 0, cuts->count() > 0); });
}

}  // namespace

static ik::cli::Register reg("story", add_story);
