// inferkit mh: differentiable Metropolis-Hastings experiments (docs/mh.md).
//   mh gmm    ambiguous observation of a 3-component mixture: Adam on the posterior entropy,
//             and the variance of the derivative vs chain length for ours and the score method
//   mh ising  specific-heat maximization on an L x L Ising lattice, coupled vs uncoupled proposal
//   mh gaussian  N(θ,1) target: primal vs alternative chain, reflection vs CRN coupling
//   mh speed  MH steps/s with and without derivatives, same binary
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <numeric>
#include <time.h>

#include "command.hpp"
#include "core/canvas.hpp"
#include "core/csv.hpp"
#include "core/error.hpp"
#include "core/plot.hpp"
#include "core/progress.hpp"
#include "prob/mcmc/gmm.hpp"
#include "prob/mcmc/ising.hpp"
#include "prob/mcmc/mh.hpp"

namespace {

using namespace ik::mcmc;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of this thread: rates stay meaningful on a loaded machine.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

std::string out_path(const std::string& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  return (std::filesystem::path(dir) / name).string();
}

// ---- gmm -------------------------------------------------------------------------------
struct GmmOptions {
  double sigma = 4.0, obs0 = 8.0, lr = 0.1, variance_obs = 0.4;
  int iters = 100, steps = 5050, burn_in = 50;
  std::vector<int> lengths{50, 200, 500, 2000, 5000};
  int64_t budget = 1000000;
  int min_reps = 100;
  std::string part = "all", out = "out/mh";
  uint64_t seed = 1;
};

// The observation with the most ambiguous exact posterior, by a fine grid search.
double most_ambiguous_obs(const GmmModel& model) {
  double best = 0, best_h = -1;
  for (double o = -14; o <= 14; o += 1e-3)
    if (double h = gmm_exact_entropy(model, o); h > best_h) best_h = h, best = o;
  return best;
}

void run_gmm_descent(const GmmModel& model, const GmmOptions& o) {
  const auto rows = gmm_descent(model, o.obs0, o.lr, o.iters, o.steps - o.burn_in, o.burn_in, o.seed);
  ik::CsvWriter csv(out_path(o.out, "gmm_descent.csv"),
                    {"iter", "obs", "entropy_estimate", "exact_entropy", "gradient"});
  std::vector<double> it, obs;
  for (const auto& r : rows) {
    csv.add(r.iter, r.obs, r.entropy_estimate, r.exact_entropy, r.gradient);
    it.push_back(r.iter);
    obs.push_back(r.obs);
  }
  const double target = most_ambiguous_obs(model);
  fmt::print("gmm descent: obs {:.3f} -> {:.3f} after {} Adam steps (lr {}); exact entropy {:.4f} "
             "(max {:.4f} at obs {:.3f})\n",
             o.obs0, rows.back().obs, o.iters, o.lr, rows.back().exact_entropy,
             gmm_exact_entropy(model, target), target);
  ik::LinePlot p("Adam on the posterior entropy (stochastic derivatives)");
  p.xlabel("iteration").ylabel("observation");
  p.add("obs", it, obs);
  p.hline(target, fmt::format("exact argmax {:.2f}", target));
  p.save_png(out_path(o.out, "gmm_descent.png"));
}

void run_gmm_variance(const GmmModel& model, const GmmOptions& o) {
  for (int T : o.lengths) IK_CHECK(T > 0, "chain length T = {} must be > 0", T);
  const auto rows = gmm_variance_sweep(model, o.variance_obs, o.lengths, o.budget, o.min_reps,
                                       o.burn_in, o.seed);
  ik::CsvWriter csv(out_path(o.out, "gmm_variance.csv"),
                    {"T", "replicates", "mean_stochastic", "var_stochastic", "mean_score", "var_score"});
  std::vector<double> Ts, v_ours, v_score, ref;
  fmt::print("{:>6} {:>6} {:>14} {:>12} {:>14} {:>12}\n", "T", "reps", "mean(ours)", "var(ours)",
             "mean(score)", "var(score)");
  for (const auto& r : rows) {
    csv.add(r.T, r.replicates, r.mean_ours, r.var_ours, r.mean_score, r.var_score);
    fmt::print("{:>6} {:>6} {:>14.5f} {:>12.3e} {:>14.5f} {:>12.3e}\n", r.T, r.replicates,
               r.mean_ours, r.var_ours, r.mean_score, r.var_score);
    Ts.push_back(r.T);
    v_ours.push_back(r.var_ours);
    v_score.push_back(r.var_score);
    ref.push_back(1.0 / r.T);
  }
  ik::LinePlot p(fmt::format("Variance of d entropy / d obs at obs = {}", o.variance_obs));
  p.xlabel("MH chain length T").ylabel("variance").xscale(ik::Scale::log10).yscale(ik::Scale::log10);
  p.add("score method", Ts, v_score).markers = true;
  p.add("stochastic derivatives", Ts, v_ours).markers = true;
  auto& r = p.add("1/T", Ts, ref);
  r.dashed = true;
  r.color = ik::colors::dark_grey;
  p.legend(ik::Legend::bottom_left);
  p.save_png(out_path(o.out, "gmm_variance.png"));
}

void add_gmm(CLI::App& mh) {
  auto o = std::make_shared<GmmOptions>();
  auto* c = mh.add_subcommand("gmm", "Ambiguous observation of a 3-component mixture (means -2.5, 2, 5)");
  c->add_option("--sigma", o->sigma, "component standard deviation")->capture_default_str();
  c->add_option("--obs0", o->obs0, "starting observation for Adam")->capture_default_str();
  c->add_option("--lr", o->lr, "Adam learning rate")->capture_default_str();
  c->add_option("--iters", o->iters, "Adam iterations")->capture_default_str();
  c->add_option("--steps", o->steps, "MH chain length T per gradient (including burn-in)")->capture_default_str();
  c->add_option("--burn-in", o->burn_in, "discarded first steps B (< T)")->capture_default_str();
  c->add_option("--variance-obs", o->variance_obs, "observation of the variance sweep")->capture_default_str();
  c->add_option("--lengths", o->lengths, "variance sweep: measured samples per chain (after burn-in)")
      ->delimiter(',')->capture_default_str();
  c->add_option("--budget", o->budget, "variance sweep: replicates = budget / T")->capture_default_str();
  c->add_option("--min-reps", o->min_reps, "variance sweep: at least this many replicates")->capture_default_str();
  c->add_option("--part", o->part, "descent, variance or all")->capture_default_str();
  c->add_option("--out", o->out, "output folder for CSV and PNG")->capture_default_str();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->callback([o] {
    const GmmModel model(o->sigma);
    ChainSpec{o->steps, o->burn_in, 1}.check();
    IK_CHECK(o->part == "all" || o->part == "descent" || o->part == "variance",
             "unknown part '{}' (expected descent, variance or all)", o->part);
    IK_CHECK(o->iters > 0 && o->lr > 0, "iterations and learning rate must be > 0");
    IK_CHECK(o->budget > 0 && o->min_reps >= 2, "budget must be > 0 and min-reps >= 2");
    for (int T : o->lengths) IK_CHECK(T > 0, "chain length T = {} in --lengths must be > 0", T);
    if (o->part != "variance") run_gmm_descent(model, *o);
    if (o->part != "descent") run_gmm_variance(model, *o);
  });
}

// ---- ising -----------------------------------------------------------------------------
struct IsingOptions {
  int L = 12, sweeps = 1100, burn_in = 100, iters = 1000;
  double T0 = 6.0, lr = 0.003;
  std::string proposal = "both", out = "out/mh";
  uint64_t seed = 1;
};

std::vector<bool> parse_ising_proposals(const std::string& name) {
  if (name == "coupled") return {true};
  if (name == "uncoupled") return {false};
  if (name == "both") return {true, false};
  ik::fail("unknown proposal '{}' (expected coupled, uncoupled or both)", name);
}

void add_ising(CLI::App& mh) {
  auto o = std::make_shared<IsingOptions>();
  auto* c = mh.add_subcommand("ising", "Maximize the specific heat C = Var(E)/T^2 of an L x L Ising model over T");
  c->add_option("-L,--side", o->L, "lattice side (periodic)")->capture_default_str();
  c->add_option("--sweeps", o->sweeps, "sweeps per gradient T, including burn-in")->capture_default_str();
  c->add_option("--burn-in", o->burn_in, "equilibration sweeps B (< sweeps)")->capture_default_str();
  c->add_option("--iters", o->iters, "Adam iterations")->capture_default_str();
  c->add_option("--T0", o->T0, "initial temperature")->capture_default_str();
  c->add_option("--lr", o->lr, "Adam learning rate")->capture_default_str();
  c->add_option("--proposal", o->proposal, "coupled (shared random spin), uncoupled (always flip) or both")
      ->capture_default_str();
  c->add_option("--out", o->out, "output folder for CSV and PNG")->capture_default_str();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->callback([o] {
    const auto proposals = parse_ising_proposals(o->proposal);
    IK_CHECK(o->sweeps > 0, "sweeps T = {} must be > 0", o->sweeps);
    IK_CHECK(o->burn_in >= 0 && o->burn_in < o->sweeps, "burn-in {} must be in [0, sweeps T = {})",
             o->burn_in, o->sweeps);
    IK_CHECK(o->T0 > 0, "initial temperature --T0 {} must be > 0", o->T0);
    IK_CHECK(o->lr > 0 && o->iters > 0, "learning rate and iterations must be > 0");
    const IsingRunSpec base{o->L, o->burn_in, o->sweeps - o->burn_in, true};
    base.check();
    ik::CsvWriter csv(out_path(o->out, "ising_trace.csv"), {"proposal", "iter", "T", "C", "dC_dT"});
    ik::LinePlot pT("Temperature"), pC("Specific heat C");
    pT.xlabel("iteration").ylabel("T");
    pC.xlabel("iteration").ylabel("C = Var(E)/T^2");
    const double t_c = 2 / std::log(1 + std::sqrt(2.0));
    for (bool coupled : proposals) {
      IsingRunSpec spec = base;
      spec.coupled = coupled;
      const char* name = coupled ? "coupled" : "uncoupled";
      ik::Progress bar(fmt::format("ising {}", name), o->iters);
      const auto t0 = Clock::now();
      const double cpu0 = thread_cpu_seconds();
      const auto rows = ising_optimize(spec, o->T0, o->lr, o->iters, o->seed, [&](const IsingTraceRow& r) {
        bar.set_note(fmt::format("T {:.3f} C {:.1f}", r.T, r.C));
        bar.advance();
      });
      bar.finish();
      const double wall = seconds_since(t0), cpu = thread_cpu_seconds() - cpu0;
      std::vector<double> it, T, C;
      double tail_T = 0, tail_C = 0;
      const int tail = std::min<int>(100, rows.size());
      for (const auto& r : rows) {
        csv.add(name, r.iter, r.T, r.C, r.dC_dT);
        it.push_back(r.iter);
        T.push_back(r.T);
        C.push_back(r.C);
      }
      for (int i = int(rows.size()) - tail; i < int(rows.size()); ++i) tail_T += rows[i].T, tail_C += rows[i].C;
      fmt::print("ising {:9}: T {:.3f} -> {:.3f} (mean of last {} iterations {:.3f}, C {:.1f}); T_c = {:.3f}; "
                 "{} iterations in {:.1f} s wall, {:.1f} s CPU\n",
                 name, o->T0, rows.back().T, tail, tail_T / tail, tail_C / tail, t_c, o->iters, wall, cpu);
      pT.add(name, it, T);
      pC.add(name, it, C);
    }
    pT.hline(t_c, "T_c");
    ik::Canvas canvas(1600, 500);
    pT.draw(canvas, 0, 0, 800, 500);
    pC.draw(canvas, 800, 0, 800, 500);
    canvas.save_png(out_path(o->out, "ising_opt.png"));
  });
}

// ---- gaussian --------------------------------------------------------------------------
// The illustration of the paper (gaussian_plot_alts.jl): target N(θ, 1), random walk σ = 2.38,
// x0 = 0, f = x. One trajectory of the primal and alternative chains, and the variance of the
// derivative estimate under reflection vs common-random-numbers coupling.
struct GaussianOptions {
  double theta = 0.5, sigma = 2.38;
  int steps = 200, burn_in = 0, reps = 10000;
  std::string coupling = "both", out = "out/mh";
  uint64_t seed = 1;
};

void add_gaussian(CLI::App& mh) {
  auto o = std::make_shared<GaussianOptions>();
  auto* c = mh.add_subcommand("gaussian", "Target N(theta, 1): primal vs alternative chain, reflection vs CRN coupling");
  c->add_option("--theta", o->theta, "target mean")->capture_default_str();
  c->add_option("--sigma", o->sigma, "random-walk step size")->capture_default_str();
  c->add_option("--steps", o->steps, "chain length T")->capture_default_str();
  c->add_option("--burn-in", o->burn_in, "discarded first steps B (< T)")->capture_default_str();
  c->add_option("--reps", o->reps, "independent estimates per coupling")->capture_default_str();
  c->add_option("--coupling", o->coupling, "reflection, crn or both")->capture_default_str();
  c->add_option("--out", o->out, "output folder for CSV and PNG")->capture_default_str();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->callback([o] {
    IK_CHECK(o->sigma > 0, "sigma = {} must be > 0", o->sigma);
    const ChainSpec spec{o->steps, o->burn_in, 1};
    spec.check();
    IK_CHECK(o->reps >= 2, "reps {} must be >= 2", o->reps);
    std::vector<RwCoupling> couplings;
    if (o->coupling == "both") couplings = {RwCoupling::reflection, RwCoupling::crn};
    else couplings = {parse_rw_coupling(o->coupling)};
    const GaussianModel model;
    auto fx = [](double x) { return std::array<double, 1>{x}; };
    ik::CsvWriter csv(out_path(o->out, "gaussian_paths.csv"), {"coupling", "step", "primal", "alternative", "weight"});
    std::vector<ik::LinePlot> plots;
    for (RwCoupling coupling : couplings) {
      const char* name = coupling == RwCoupling::reflection ? "reflection" : "crn";
      std::vector<double> d(o->reps);
#pragma omp parallel for schedule(static)
      for (int r = 0; r < o->reps; ++r) {
        ik::Rng rng(o->seed, uint64_t(r));
        RandomWalkProposal q{o->sigma, coupling};
        d[r] = estimate_dmh<1>(model, q, 0.0, o->theta, spec, fx, rng).derivative[0];
      }
      const double mean = std::accumulate(d.begin(), d.end(), 0.0) / d.size();
      double var = 0;
      for (double x : d) var += (x - mean) * (x - mean);
      var /= d.size() - 1;
      // One trajectory: how long alternatives live before they re-merge.
      ik::Rng rng(o->seed + 1000);
      RandomWalkProposal q{o->sigma, coupling};
      CoupledChain<GaussianModel, RandomWalkProposal> chain{model, q, o->theta, 0.0};
      std::vector<double> t, xs, ys;
      int alive = 0;
      for (int s = 1; s <= o->steps; ++s) {
        chain.step(rng);
        alive += chain.alt.alive;
        const double y = chain.alt.alive ? chain.alt.value : NAN;
        csv.add(name, s, chain.x, y, chain.alt.alive ? chain.alt.weight : 0.0);
        t.push_back(s);
        xs.push_back(chain.x);
        ys.push_back(y);
      }
      fmt::print("gaussian {:10}: d/dtheta E[J_T] = {:.4f} +- {:.4f} (variance {:.3e}, {} estimates); "
                 "alternative alive {:.0f}% of steps in the plotted chain\n",
                 name, mean, std::sqrt(var / d.size()), var, o->reps, 100.0 * alive / o->steps);
      auto& plot = plots.emplace_back(fmt::format("Primal and alternative chain, {} coupling", name));
      plot.xlabel("step").ylabel("x");
      plot.add("primal", t, xs);
      plot.add("alternative", t, ys).markers = true;
    }
    ik::Canvas canvas(800 * int(plots.size()), 500);
    for (size_t i = 0; i < plots.size(); ++i) plots[i].draw(canvas, 800 * int(i), 0, 800, 500);
    canvas.save_png(out_path(o->out, "gaussian_paths.png"));
  });
}

// ---- speed -----------------------------------------------------------------------------
template <typename RunPlain, typename RunDmh>
void time_pair(const char* what, double steps, RunPlain plain, RunDmh dmh) {
  double t0 = thread_cpu_seconds();
  double sink = plain();
  const double t_plain = thread_cpu_seconds() - t0;
  t0 = thread_cpu_seconds();
  sink += dmh();
  const double t_dmh = thread_cpu_seconds() - t0;
  fmt::print("{:<34} plain {:>8.2f} M steps/s   with derivatives {:>8.2f} M steps/s   overhead {:.2f}x  "
             "(checksum {:.3g})\n",
             what, steps / t_plain / 1e6, steps / t_dmh / 1e6, t_dmh / t_plain, sink);
}

void add_speed(CLI::App& mh) {
  auto steps = std::make_shared<int>(10000000);
  auto* c = mh.add_subcommand("speed", "MH steps/s (thread CPU time) with and without derivatives, same binary");
  c->add_option("--steps", *steps, "MH steps per measurement")->capture_default_str();
  c->callback([steps] {
    IK_CHECK(*steps >= 1000, "--steps {} must be >= 1000", *steps);
    const GmmModel gmm;
    auto one_hot = [](int i) {
      std::array<double, 3> f{};
      f[i] = 1;
      return f;
    };
    const ChainSpec g{*steps, 50, 1};
    time_pair("gmm (3 states)", *steps,
              [&] { ik::Rng r(1); UniformOthersProposal q{3}; return run_plain<3>(gmm, q, 0, 0.4, g, one_hot, r)[0]; },
              [&] { ik::Rng r(1); UniformOthersProposal q{3}; return estimate_dmh<3>(gmm, q, 0, 0.4, g, one_hot, r).derivative[0]; });
    for (double T : {2.3, 6.0}) {
      const IsingModel model(12);
      const int sweeps = std::max(2, *steps / 144);
      const ChainSpec s{sweeps, 1, 144};
      auto energy = [](const IsingState& x) { return std::array<double, 1>{double(x.energy)}; };
      time_pair(fmt::format("ising 12x12 coupled, T = {}", T).c_str(), double(sweeps) * 144,
                [&] { ik::Rng r(2); IsingSiteProposal q(12, true); return run_plain<1>(model, q, model.cold_start(), T, s, energy, r)[0]; },
                [&] { ik::Rng r(2); IsingSiteProposal q(12, true); return estimate_dmh<1>(model, q, model.cold_start(), T, s, energy, r).derivative[0]; });
    }
  });
}

void add_mh(CLI::App& app) {
  auto* mh = app.add_subcommand("mh", "Differentiable Metropolis-Hastings: stochastic derivatives with coupled chains");
  mh->require_subcommand(1);
  add_gmm(*mh);
  add_ising(*mh);
  add_gaussian(*mh);
  add_speed(*mh);
}

ik::cli::Register reg("mh", add_mh);

}  // namespace
