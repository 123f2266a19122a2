#pragma once
// Gradient guesses for an MLP (Singhal et al., "How to guess a gradient", arXiv 2312.04709).
// A guess y has the layout of the parameters; the forward-gradient estimate is (dL.y) y where
// dL.y is one JVP. Every guess here is label-free: it uses only the weights, the batch's
// activations x_i and the ReLU masks D_i = [s_i > 0] of the forward pass. See docs/guess.md.
//
// Per layer i with augmented inputs x~_b = [x_{i,b}; 1] (so the bias is the last column):
//   directional      y ~ N(0, I) over every parameter
//   act-pert         dW~_i = sum_b e_b x~_b^T,                    e_b ~ N(0, I_out(i))
//   wt               dW~_i = sum_b (D_{i,b} W_{i+1}^T e_b) x~_b^T,   e_b ~ N(0, I_out(i+1))
//   downstream       dW~_i = sum_b (D_{i,b} W_{i+1}^T D_{i+1,b} W_{i+2}^T e_b) x~_b^T, e_b ~ N(0, I_out(i+2))
//   act-mix          dW~_i = e (sum_b a_b x~_b)^T,                 e ~ N(0, I_out(i)), a ~ N(0, I_B)
// Layers with fewer layers above them than the family pulls back through use as many as exist
// (the last layer gets act-pert's isotropic output guess). Every layer draws its own noise.
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "prob/guess/mlp.hpp"

namespace ik::guess {

enum class Family { directional, act_pert, wt, downstream, act_mix };

const std::vector<Family>& all_families();
std::string family_name(Family f);
Family parse_family(const std::string& name);  // throws ik::Error listing the valid names

// One guess direction for the current batch (overwrites y, resized to net.size()).
void draw_guess(Family family, const Mlp& net, const Forward& f, Rng& rng, std::vector<float>& y);

// Closed form of E[(g.y) y] over the family's noise, for gradient g at this batch:
// g for directional; per layer sum_b J_b J_b^T G~ x~_b x~_b^T for the pulled-back families
// (J_b = the pull-back, identity for act-pert), and G~ X~^T X~ for act-mix. Computed example
// by example with plain loops, independently of draw_guess's batched matrix products.
std::vector<float> expected_estimate(Family family, const Mlp& net, const Forward& f,
                                     const std::vector<float>& g);

double dot(const std::vector<float>& a, const std::vector<float>& b);
double cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace ik::guess
