#pragma once
// Models and proposals for the experiments and tests, each with its coupling for the
// alternative chain (mh.hpp describes the interfaces).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace ik::mcmc {

// ---- Mixture: i ~ Unif{0,1,2}, obs | i ~ N(mu_i, sigma^2); θ = obs; MH over i. ----------
struct GmmModel {
  using State = int;
  using Move = int;  // the proposed component
  std::array<double, 3> means{-2.5, 2.0, 5.0};
  double sigma = 4.0;

  GmmModel() = default;
  explicit GmmModel(double sd) : sigma(sd) { IK_CHECK(sd > 0, "sigma = {} must be > 0", sd); }

  template <typename S>
  S log_density(int i, const S& obs) const {  // up to a constant shared by all i
    const S z = (obs - means[i]) / sigma;
    return -0.5 * z * z;
  }
  template <typename S>
  S log_ratio(int i, int j, const S& obs) const {
    return log_density(j, obs) - log_density(i, obs);
  }
  void apply(int& i, int j) const { i = j; }
  // Exact posterior p(i | obs), by enumeration.
  std::array<double, 3> posterior(double obs) const;
};

// Propose one of the other K-1 values uniformly. Maximum-residual coupling: the alternative
// at j takes the primal's proposal unless that is j itself, in which case it takes the
// primal's current value (uniform over j's others, and equal to the primal's as often as can be).
struct UniformOthersProposal {
  int K = 3;
  int propose(int i, Rng& rng) const {
    const int j = int(rng.below(K - 1));
    return j >= i ? j + 1 : j;
  }
  int couple(int y, int x, int x_prop, Rng&) const { return x_prop != y ? x_prop : x; }
};

// ---- Gaussian target N(θ, 1) over x in R (the illustration and the coupling test). --------
struct GaussianModel {
  using State = double;
  using Move = double;  // the proposed point
  template <typename S>
  S log_ratio(double x, double x_new, const S& mean) const {
    const S a = x_new - mean, b = x - mean;
    return -0.5 * (a * a - b * b);
  }
  void apply(double& x, double x_new) const { x = x_new; }
};

// Random walk x' = x + sigma z. Coupling of the alternative y: maximal reflection (y' = x'
// with probability min(1, φ((x'-y)/σ)/φ((x'-x)/σ)), else the reflected y' = y - (x'-x)) or
// common random numbers (y' = y + (x'-x), never meets x' in continuous space).
enum class RwCoupling { reflection, crn };
RwCoupling parse_rw_coupling(const std::string& name);

struct RandomWalkProposal {
  double sigma = 1.0;
  RwCoupling coupling = RwCoupling::reflection;
  double propose(double x, Rng& rng) const { return x + sigma * rng.normal(); }
  double couple(double y, double x, double x_prop, Rng& rng) const {
    const double step = x_prop - x;
    if (coupling == RwCoupling::crn) return y + step;
    const double zx = step / sigma, zy = (x_prop - y) / sigma;
    if (std::log(rng.uniform()) <= 0.5 * (zx * zx - zy * zy)) return x_prop;
    return y - step;
  }
};

// ---- Ising: L x L periodic, J = 1, h = 0; θ = temperature T; ℓ = -E/T. --------------------
struct IsingState {
  std::vector<int8_t> spin;
  int energy = 0;  // E = -Σ_<ij> s_i s_j, kept up to date by apply()
  bool operator==(const IsingState& o) const { return spin == o.spin; }
};

struct IsingMove {
  int site;
  int8_t new_spin;  // may equal the current spin: then the move does nothing
};

struct IsingModel {
  using State = IsingState;
  using Move = IsingMove;
  int L;
  explicit IsingModel(int side) : L(side) { IK_CHECK(side >= 2, "lattice side L = {} must be >= 2", side); }

  int neighbour_sum(const IsingState& x, int site) const {
    const int r = site / L, c = site % L;
    const int up = ((r + L - 1) % L) * L + c, down = ((r + 1) % L) * L + c;
    const int left = r * L + (c + L - 1) % L, right = r * L + (c + 1) % L;
    return x.spin[up] + x.spin[down] + x.spin[left] + x.spin[right];
  }
  // E(new) - E(old) = -(s' - s) nb, so ℓ(new) - ℓ(old) = (s' - s) nb / T.
  template <typename S>
  S log_ratio(const IsingState& x, const IsingMove& m, const S& temperature) const {
    const int ds = m.new_spin - x.spin[m.site];
    if (ds == 0) return S(0.0);
    return S(double(ds * neighbour_sum(x, m.site))) / temperature;
  }
  void apply(IsingState& x, const IsingMove& m) const {
    const int ds = m.new_spin - x.spin[m.site];
    if (ds == 0) return;
    x.energy -= ds * neighbour_sum(x, m.site);
    x.spin[m.site] = m.new_spin;
  }
  IsingState cold_start() const;      // all spins +1
  int energy(const IsingState& x) const;  // from scratch (tests, checks)
};

// Single-site proposals visiting every site once per sweep, in shuffled row order x shuffled
// column order (a fixed order when shuffle = false, for the exact-kernel test).
//  coupled:   new spin ~ Unif{-1,+1}, SHARED by primal and alternative, so once both accept they
//             agree at that site and the chains can re-merge;
//  uncoupled: always propose the flip -s; a site where the chains differ stays different.
struct IsingSiteProposal {
  int L;
  bool coupled = true;
  bool shuffle = true;
  std::vector<int> rows, cols;
  int cursor = 0;

  IsingSiteProposal(int side, bool coupled_spin, bool shuffled = true);
  IsingMove propose(const IsingState& x, Rng& rng);
  IsingMove couple(const IsingState& y, const IsingState&, const IsingMove& mx, Rng&) const {
    return {mx.site, coupled ? mx.new_spin : int8_t(-y.spin[mx.site])};
  }
};

}  // namespace ik::mcmc
