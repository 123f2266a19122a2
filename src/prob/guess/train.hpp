#pragma once
// Training an MLP from exact gradients (backprop) or forward-gradient estimates built from
// k guesses per step, with SGD or Adam.
#include <functional>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "prob/guess/dataset.hpp"
#include "prob/guess/guesses.hpp"
#include "prob/guess/mlp.hpp"

namespace ik::guess {

// Where a step's gradient comes from: backprop, or k guesses of one family.
struct Method {
  bool backprop = true;
  Family family = Family::directional;
  int k = 1;
};
Method parse_method(const std::string& name, int k);  // "backprop" or a family name; k > 0
std::string method_name(const Method& m);             // "backprop", "wt k=4", ...

// Forward-gradient estimate from k guesses: sum_j (dL.y_j) y_j / |y_j|^2, i.e. the true gradient
// projected on each guessed direction; each dL.y_j is one forward-mode (JVP) pass, no backprop.
void forward_gradient(Family family, int k, const Mlp& net, const Forward& f, Rng& rng,
                      std::vector<float>& estimate);

// The step's gradient (exact or estimated) for a batch already run forward.
void step_gradient(const Method& m, const Mlp& net, const Forward& f, Rng& rng, std::vector<float>& grad);

enum class OptimizerKind { sgd, adam };
OptimizerKind parse_optimizer(const std::string& name);

class Optimizer {
 public:
  Optimizer(OptimizerKind kind, double lr, size_t size);
  void step(std::vector<float>& params, const std::vector<float>& grad);

 private:
  OptimizerKind kind_;
  double lr_;
  double beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8;
  long t_ = 0;
  std::vector<float> m_, v_;
};

struct TrainConfig {
  Method method;
  OptimizerKind optimizer = OptimizerKind::adam;
  double lr = 1e-3;
  int batch = 64;
  double epochs = 1;  // fractional epochs allowed
  uint64_t seed = 1;
  int eval_every = 200;  // steps between checkpoints
  bool progress = true;
};

// Called at step 0, every eval_every steps and after the last step; train_loss is the mean
// batch loss since the previous call (the initial batch's loss at step 0).
using Checkpoint = std::function<void(int step, double epoch, double train_loss)>;

// Minibatch training on data (reshuffled every epoch). Returns the number of steps taken.
int train(Mlp& net, const Dataset& data, const TrainConfig& cfg, const Checkpoint& on_checkpoint);

}  // namespace ik::guess
