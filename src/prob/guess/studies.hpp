#pragma once
// Measurements behind `inferkit guess cosine|bias|speed`: cosine of each guess family with the
// true gradient, effective rank of the weights, the bias of (g.y) y, and step timings.
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "prob/guess/guesses.hpp"
#include "prob/guess/mlp.hpp"

namespace ik::guess {

// Mean |cos(y, g)| over `guesses` draws, one entry per family in all_families() order.
// |cos(y, g)| is also the cosine between the one-guess estimate (g.y) y and g.
std::vector<double> family_cosines(const Mlp& net, const Forward& f, const std::vector<float>& g,
                                   int guesses, Rng& rng);

// exp(entropy of the normalised singular values) of W_layer (Roy & Vetterli 2007).
double effective_rank(const Mlp& net, int layer);

struct BiasResult {
  Family family;
  double cos_expected_vs_g = 0;  // cos(E[(g.y)y], g): 1 means unbiased in direction
  double expected_norm_ratio = 0;  // |E[(g.y)y]| / |g|
  std::vector<int> samples;        // checkpoints (powers of 10 and the total)
  std::vector<double> rel_error;   // |mean of (g.y)y - E| / |E| at each checkpoint
};
// Empirical mean of (g.y) y over `samples` guesses of each family vs the closed form.
std::vector<BiasResult> bias_study(const Mlp& net, const Forward& f, const std::vector<float>& g,
                                   int samples, Rng& rng);

struct Timing {
  std::string what;
  double ms = 0;  // mean wall time per call
};
// Forward pass, backprop step, JVP pass, and a k=1 forward-gradient step per family (SGD update).
std::vector<Timing> speed_study(const Mlp& net, const float* x, const int* y, int batch, int reps);

}  // namespace ik::guess
