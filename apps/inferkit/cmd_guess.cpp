// `inferkit guess cosine|train|bias|speed`: forward gradients from guessed directions on
// Fashion-MNIST MLPs (Singhal et al., "How to guess a gradient"). See docs/guess.md.
#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>

#include "command.hpp"
#include "core/csv.hpp"
#include "core/error.hpp"
#include "core/plot.hpp"
#include "prob/guess/dataset.hpp"
#include "prob/guess/studies.hpp"
#include "prob/guess/train.hpp"

using namespace ik::guess;

namespace {

// CLI11's own range checks print the whole double range; these say what is wrong in one line.
CLI::Validator number_check(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& s) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(s, &used);
          if (used == s.size() && (v > 0 || (allow_zero && v == 0))) return "";
        } catch (const std::exception&) {
        }
        return fmt::format("must be a {} number, got '{}'", allow_zero ? "non-negative" : "positive", s);
      },
      allow_zero ? ">= 0" : "> 0");
}
const CLI::Validator kPositive = number_check(false);
const CLI::Validator kNonNegative = number_check(true);

struct Common {
  std::string data = kFashionMnistDir;
  std::vector<int> widths{256, 256};
  int batch = 64;
  uint64_t seed = 1;
  std::string out = "guess_out";
};

void add_common(CLI::App* c, const std::shared_ptr<Common>& o) {
  c->add_option("--data", o->data, "Fashion-MNIST IDX directory (Debian package dataset-fashion-mnist)")
      ->capture_default_str();
  c->add_option("--widths", o->widths, "hidden layer widths, comma separated (784-...-10 MLP)")
      ->delimiter(',')
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--batch", o->batch, "minibatch size")->check(kPositive)->capture_default_str();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->add_option("--out", o->out, "output directory for CSV and PNG files")->capture_default_str();
}

Mlp make_net(const Common& o, int inputs, int classes) {
  std::vector<int> widths{inputs};
  widths.insert(widths.end(), o.widths.begin(), o.widths.end());
  widths.push_back(classes);
  Mlp net(widths);
  ik::Rng rng(o.seed, 7);
  net.init(rng);
  return net;
}

std::string shape(const Mlp& net) {
  std::string s;
  for (int w : net.widths) s += (s.empty() ? "" : "-") + std::to_string(w);
  return s;
}

std::string out_path(const Common& o, const std::string& name) {
  std::filesystem::create_directories(o.out);
  return o.out + "/" + name;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ',');)
    if (!p.empty()) parts.push_back(p);
  IK_CHECK(!parts.empty(), "empty method list");
  return parts;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// ---- cosine ------------------------------------------------------------------------------
struct CosineOpts {
  std::string method = "backprop";
  int k = 1;
  std::string optimizer = "adam";
  double lr = 1e-3, epochs = 0;
  int checkpoints = 5, guesses = 100, train_limit = 0;
};

void run_cosine(const Common& o, const CosineOpts& c) {
  const Dataset data = load_fashion_mnist(o.data, "train", c.train_limit);
  Mlp net = make_net(o, data.dim, data.classes);
  IK_CHECK(o.batch <= data.count, "batch {} larger than the {} training images", o.batch, data.count);
  ik::Rng rng(o.seed, 3);
  // Measured on one fixed batch (the first training images) throughout.
  std::vector<std::string> header{"step", "epoch", "train_loss"};
  for (Family f : all_families()) header.push_back("cos_" + family_name(f));
  for (int i = 0; i < net.layers(); ++i) header.push_back(fmt::format("erank_W{}", i));
  ik::CsvWriter csv(out_path(o, "cosine.csv"), header);
  std::vector<double> steps;
  std::vector<std::vector<double>> cos_series(all_families().size()), rank_series(net.layers());
  fmt::print("MLP {} (P = {}), batch {}, mean |cos(guess, grad)| over {} guesses; training: {}\n", shape(net),
             net.size(), o.batch, c.guesses, c.epochs > 0 ? c.method : "none");
  fmt::print("{:>6} {:>6} {:>7}", "step", "epoch", "loss");
  for (Family f : all_families()) fmt::print(" {:>11}", family_name(f));
  for (int i = 0; i < net.layers(); ++i) fmt::print(" {:>8}", fmt::format("erank W{}", i));
  fmt::print("\n");
  auto measure = [&](int step, double epoch, double loss) {
    const Forward f = forward(net, data.x.data(), data.y.data(), o.batch);
    std::vector<float> g;
    backprop(net, f, g);
    const std::vector<double> cos = family_cosines(net, f, g, c.guesses, rng);
    std::vector<std::string> row{std::to_string(step), fmt::format("{:.3f}", epoch), fmt::format("{:.5f}", loss)};
    fmt::print("{:>6} {:>6.2f} {:>7.4f}", step, epoch, loss);
    steps.push_back(step);
    for (size_t j = 0; j < cos.size(); ++j) {
      row.push_back(fmt::format("{:.6g}", cos[j]));
      cos_series[j].push_back(cos[j]);
      fmt::print(" {:>11.5f}", cos[j]);
    }
    for (int i = 0; i < net.layers(); ++i) {
      const double r = effective_rank(net, i);
      rank_series[i].push_back(r);
      row.push_back(fmt::format("{:.4f}", r));
      fmt::print(" {:>8.2f}", r);
    }
    fmt::print("\n");
    csv.row(row);
  };
  if (c.epochs <= 0) {
    const Forward f = forward(net, data.x.data(), data.y.data(), o.batch);
    measure(0, 0, f.loss);
  } else {
    TrainConfig cfg;
    cfg.method = parse_method(c.method, c.k);
    cfg.optimizer = parse_optimizer(c.optimizer);
    cfg.lr = c.lr;
    cfg.batch = o.batch;
    cfg.epochs = c.epochs;
    cfg.seed = o.seed;
    cfg.progress = false;
    const int total = std::max(1, int(c.epochs * (data.count / o.batch)));
    cfg.eval_every = std::max(1, (total + c.checkpoints - 1) / c.checkpoints);
    train(net, data, cfg, measure);
  }
  ik::LinePlot p(fmt::format("|cos(guess, gradient)|, MLP {}, training: {}", shape(net),
                             c.epochs > 0 ? c.method : "none"));
  p.xlabel("training step").ylabel("mean |cosine|").yscale(ik::Scale::log10).legend(ik::Legend::bottom_right);
  for (size_t j = 0; j < cos_series.size(); ++j) p.add(family_name(all_families()[j]), steps, cos_series[j]).markers = true;
  p.save_png(out_path(o, "cosine.png"));
  ik::LinePlot r(fmt::format("effective rank of the weights, MLP {}", shape(net)));
  r.xlabel("training step").ylabel("effective rank").yscale(ik::Scale::log10);
  for (int i = 0; i < net.layers(); ++i) r.add(fmt::format("W{}", i), steps, rank_series[i]).markers = true;
  r.save_png(out_path(o, "erank.png"));
  fmt::print("wrote {0}/cosine.csv, {0}/cosine.png, {0}/erank.png\n", o.out);
}

void add_cosine(CLI::App& parent) {
  auto o = std::make_shared<Common>();
  auto c = std::make_shared<CosineOpts>();
  auto* cmd = parent.add_subcommand("cosine",
                                    "cosine of each guess family with the true gradient, at initialization and "
                                    "(with --epochs) during training; table, CSV and PNG");
  add_common(cmd, o);
  cmd->add_option("--method", c->method, "how to train between measurements: backprop or a guess family")
      ->capture_default_str();
  cmd->add_option("--k", c->k, "guesses per step when training with a guess family")
      ->check(kPositive)->capture_default_str();
  cmd->add_option("--optimizer", c->optimizer, "sgd or adam")->capture_default_str();
  cmd->add_option("--lr", c->lr, "learning rate")->check(kPositive)->capture_default_str();
  cmd->add_option("--epochs", c->epochs, "training epochs (0: measure at initialization only)")
      ->check(kNonNegative)->capture_default_str();
  cmd->add_option("--checkpoints", c->checkpoints, "measurements during training")
      ->check(kPositive)->capture_default_str();
  cmd->add_option("--guesses", c->guesses, "guesses averaged per family and measurement")
      ->check(kPositive)->capture_default_str();
  cmd->add_option("--train-limit", c->train_limit, "use only the first N training images (0: all)")
      ->check(kNonNegative)->capture_default_str();
  cmd->callback([o, c] { run_cosine(*o, *c); });
}

// ---- train -------------------------------------------------------------------------------
struct TrainOpts {
  std::string methods = "backprop,wt";
  int k = 1;
  std::string optimizer = "adam";
  std::string lrs = "1e-3";
  double epochs = 1;
  int train_limit = 0, test_limit = 0, eval_every = 200;
};

void run_train(const Common& o, const TrainOpts& t) {
  const std::vector<std::string> names = split_commas(t.methods);
  std::vector<Method> methods;
  for (const std::string& n : names) methods.push_back(parse_method(n, t.k));  // validate before loading
  std::vector<double> lrs;
  for (const std::string& v : split_commas(t.lrs)) {
    size_t used = 0;
    double lr = 0;
    try {
      lr = std::stod(v, &used);
    } catch (const std::exception&) {
    }
    IK_CHECK(used == v.size() && lr > 0, "--lr: '{}' is not a positive number", v);
    lrs.push_back(lr);
  }
  IK_CHECK(lrs.size() == 1 || lrs.size() == methods.size(), "--lr: give one rate or one per method ({} methods, {} rates)",
           methods.size(), lrs.size());
  const Dataset data = load_fashion_mnist(o.data, "train", t.train_limit);
  const Dataset test = load_fashion_mnist(o.data, "t10k", t.test_limit);
  ik::CsvWriter csv(out_path(o, "train.csv"),
                    {"method", "k", "step", "epoch", "train_loss", "test_accuracy", "seconds"});
  ik::LinePlot loss_plot("training loss (mean over the last interval)"), acc_plot("test accuracy");
  loss_plot.xlabel("epoch").ylabel("cross-entropy").yscale(ik::Scale::log10);
  acc_plot.xlabel("epoch").ylabel("test accuracy").legend(ik::Legend::bottom_right);
  struct Summary { std::string name; double acc, seconds; int steps; double lr; };
  std::vector<Summary> summary;
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    const Method& m = methods[mi];
    Mlp net = make_net(o, data.dim, data.classes);  // same initialization for every method
    TrainConfig cfg;
    cfg.method = m;
    cfg.optimizer = parse_optimizer(t.optimizer);
    cfg.lr = lrs.size() == 1 ? lrs[0] : lrs[mi];
    cfg.batch = o.batch;
    cfg.epochs = t.epochs;
    cfg.seed = o.seed;
    cfg.eval_every = t.eval_every;
    std::vector<double> epochs, losses, accs;
    double eval_seconds = 0;
    const auto start = std::chrono::steady_clock::now();
    int steps = 0;
    std::string diverged;
    try {
      steps = train(net, data, cfg, [&](int step, double epoch, double loss) {
        const auto eval_start = std::chrono::steady_clock::now();
        const double acc = double(count_correct(net, test.x.data(), test.y.data(), test.count)) / test.count;
        eval_seconds += seconds_since(eval_start);
        csv.add(method_name(m).substr(0, method_name(m).find(' ')), m.backprop ? 0 : m.k, step,
                fmt::format("{:.4f}", epoch), fmt::format("{:.5f}", loss), fmt::format("{:.4f}", acc),
                fmt::format("{:.2f}", seconds_since(start) - eval_seconds));
        epochs.push_back(epoch), losses.push_back(loss), accs.push_back(acc);
        steps = step;
      });
    } catch (const ik::Error& e) {  // divergence of one method: report it, go on with the rest
      fmt::print(stderr, "{}: {}\n", method_name(m), e.what());
      diverged = " (diverged)";
    }
    summary.push_back({method_name(m) + diverged, accs.empty() ? 0.0 : accs.back(), seconds_since(start) - eval_seconds, steps, cfg.lr});
    loss_plot.add(method_name(m), epochs, losses);
    acc_plot.add(method_name(m), epochs, accs);
  }
  loss_plot.save_png(out_path(o, "train_loss.png"));
  acc_plot.save_png(out_path(o, "test_accuracy.png"));
  const Mlp shape_net = make_net(o, data.dim, data.classes);
  fmt::print("\nMLP {}, {} train / {} test images, batch {}, {} epochs, {}\n", shape(shape_net), data.count,
             test.count, o.batch, t.epochs, t.optimizer);
  fmt::print("{:<18} {:>8} {:>9} {:>14} {:>7} {:>11}\n", "method", "lr", "test acc", "gap to bprop", "steps",
             "train time");
  const Summary* bp = nullptr;
  for (const Summary& s : summary)
    if (s.name == "backprop") bp = &s;
  for (const Summary& s : summary)
    fmt::print("{:<18} {:>8.2g} {:>8.2f}% {:>14} {:>7} {:>10.1f}s\n", s.name, s.lr, 100 * s.acc,
               bp ? fmt::format("{:+.2f} pts", 100 * (s.acc - bp->acc)) : "-", s.steps, s.seconds);
  fmt::print("wrote {0}/train.csv, {0}/train_loss.png, {0}/test_accuracy.png\n", o.out);
}

void add_train(CLI::App& parent) {
  auto o = std::make_shared<Common>();
  auto t = std::make_shared<TrainOpts>();
  auto* cmd = parent.add_subcommand("train",
                                    "train on Fashion-MNIST with backprop or forward gradients from k guesses "
                                    "per step; curves as CSV and PNG, final test accuracy table");
  add_common(cmd, o);
  cmd->add_option("--method", t->methods,
                  "comma-separated: backprop, directional, act-pert, wt, downstream, act-mix")
      ->capture_default_str();
  cmd->add_option("--k", t->k, "guesses (JVP passes) per step")->check(kPositive)->capture_default_str();
  cmd->add_option("--optimizer", t->optimizer, "sgd or adam")->capture_default_str();
  cmd->add_option("--lr", t->lrs, "learning rate: one for all methods, or comma-separated, one per method")
      ->capture_default_str();
  cmd->add_option("--epochs", t->epochs, "epochs (fractions allowed)")->check(kPositive)->capture_default_str();
  cmd->add_option("--train-limit", t->train_limit, "use only the first N training images (0: all 60000)")
      ->check(kNonNegative)->capture_default_str();
  cmd->add_option("--test-limit", t->test_limit, "evaluate on the first N test images (0: all 10000)")
      ->check(kNonNegative)->capture_default_str();
  cmd->add_option("--eval-every", t->eval_every, "steps between test evaluations")
      ->check(kPositive)->capture_default_str();
  cmd->callback([o, t] { run_train(*o, *t); });
}

// ---- bias --------------------------------------------------------------------------------
void run_bias(const Common& o, int samples) {
  const Dataset data = load_fashion_mnist(o.data, "train", o.batch);
  IK_CHECK(o.batch <= data.count, "batch {} larger than the {} training images", o.batch, data.count);
  const Mlp net = make_net(o, data.dim, data.classes);
  const Forward f = forward(net, data.x.data(), data.y.data(), o.batch);
  std::vector<float> g;
  backprop(net, f, g);
  ik::Rng rng(o.seed, 5);
  const std::vector<BiasResult> results = bias_study(net, f, g, samples, rng);
  fmt::print("MLP {} (P = {}), batch {}: empirical mean of (g.y)y over N guesses vs closed-form M M^T g\n",
             shape(net), net.size(), o.batch);
  fmt::print("{:<12} {:>16} {:>14}", "family", "cos(MM^Tg, g)", "|MM^Tg|/|g|");
  for (int n : results[0].samples) fmt::print(" {:>12}", fmt::format("relerr N={}", n));
  fmt::print("\n");
  ik::CsvWriter csv(out_path(o, "bias.csv"), {"family", "samples", "rel_error", "cos_expected_vs_grad", "norm_ratio"});
  ik::LinePlot p(fmt::format("|mean (g.y)y - M M^T g| / |M M^T g|, MLP {}", shape(net)));
  p.xlabel("guesses N").ylabel("relative error").xscale(ik::Scale::log10).yscale(ik::Scale::log10);
  for (const BiasResult& r : results) {
    fmt::print("{:<12} {:>16.5f} {:>14.4g}", family_name(r.family), r.cos_expected_vs_g, r.expected_norm_ratio);
    for (size_t j = 0; j < r.samples.size(); ++j) {
      fmt::print(" {:>12.4f}", r.rel_error[j]);
      csv.add(family_name(r.family), r.samples[j], r.rel_error[j], r.cos_expected_vs_g, r.expected_norm_ratio);
    }
    fmt::print("\n");
    std::vector<double> n(r.samples.begin(), r.samples.end());
    p.add(family_name(r.family), n, r.rel_error).markers = true;
  }
  p.save_png(out_path(o, "bias.png"));
  fmt::print("wrote {0}/bias.csv, {0}/bias.png\n", o.out);
}

void add_bias(CLI::App& parent) {
  auto o = std::make_shared<Common>();
  o->widths = {32, 32};
  o->batch = 8;
  auto samples = std::make_shared<int>(10000);
  auto* cmd = parent.add_subcommand("bias",
                                    "empirical E[(g.y) y] of each guess family vs the analytic M M^T g on one "
                                    "Fashion-MNIST batch (a small MLP by default)");
  add_common(cmd, o);
  cmd->add_option("--samples", *samples, "guesses averaged per family")->check(kPositive)->capture_default_str();
  cmd->callback([o, samples] { run_bias(*o, *samples); });
}

// ---- speed -------------------------------------------------------------------------------
void run_speed(const Common& o, int reps) {
  const Dataset data = load_fashion_mnist(o.data, "train", o.batch);
  IK_CHECK(o.batch <= data.count, "batch {} larger than the {} training images", o.batch, data.count);
  const Mlp net = make_net(o, data.dim, data.classes);
  const std::vector<Timing> t = speed_study(net, data.x.data(), data.y.data(), o.batch, reps);
  fmt::print("MLP {} (P = {}), batch {}, mean of {} calls\n", shape(net), net.size(), o.batch, reps);
  fmt::print("{:<28} {:>10} {:>14}\n", "what", "ms", "x forward pass");
  ik::CsvWriter csv(out_path(o, "speed.csv"), {"what", "ms", "ratio_to_forward"});
  for (const Timing& r : t) {
    fmt::print("{:<28} {:>10.3f} {:>14.2f}\n", r.what, r.ms, r.ms / t[0].ms);
    csv.add(r.what, r.ms, r.ms / t[0].ms);
  }
  fmt::print("wrote {}/speed.csv\n", o.out);
}

void add_speed(CLI::App& parent) {
  auto o = std::make_shared<Common>();
  auto reps = std::make_shared<int>(50);
  auto* cmd = parent.add_subcommand("speed",
                                    "time a forward pass, a backprop step, a JVP pass and a one-guess "
                                    "forward-gradient step of each family (SGD update), same binary");
  add_common(cmd, o);
  cmd->add_option("--reps", *reps, "timed calls per measurement")->check(kPositive)->capture_default_str();
  cmd->callback([o, reps] { run_speed(*o, *reps); });
}

void add_guess(CLI::App& app) {
  auto* g = app.add_subcommand("guess", "forward gradients from guessed directions (How to guess a gradient, "
                                        "Singhal et al. 2023) on Fashion-MNIST MLPs");
  g->require_subcommand(1);
  add_cosine(*g);
  add_train(*g);
  add_bias(*g);
  add_speed(*g);
}

}  // namespace

static ik::cli::Register reg("guess", add_guess);
