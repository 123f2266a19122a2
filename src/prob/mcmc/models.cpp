#include "prob/mcmc/models.hpp"

#include <numeric>

namespace ik::mcmc {

std::array<double, 3> GmmModel::posterior(double obs) const {
  std::array<double, 3> p;
  double top = -1e300;
  for (int i = 0; i < 3; ++i) top = std::max(top, log_density(i, obs));
  double total = 0;
  for (int i = 0; i < 3; ++i) total += p[i] = std::exp(log_density(i, obs) - top);
  for (auto& q : p) q /= total;
  return p;
}

RwCoupling parse_rw_coupling(const std::string& name) {
  if (name == "reflection") return RwCoupling::reflection;
  if (name == "crn") return RwCoupling::crn;
  fail("unknown random-walk coupling '{}' (expected reflection or crn)", name);
}

IsingState IsingModel::cold_start() const {
  IsingState x;
  x.spin.assign(size_t(L) * L, 1);
  x.energy = energy(x);
  return x;
}

int IsingModel::energy(const IsingState& x) const {
  int e = 0;
  for (int r = 0; r < L; ++r)
    for (int c = 0; c < L; ++c)  // each bond once: right and down neighbours
      e -= x.spin[r * L + c] * (x.spin[r * L + (c + 1) % L] + x.spin[((r + 1) % L) * L + c]);
  return e;
}

IsingSiteProposal::IsingSiteProposal(int side, bool coupled_spin, bool shuffled)
    : L(side), coupled(coupled_spin), shuffle(shuffled), rows(side), cols(side) {
  IK_CHECK(side >= 2, "lattice side L = {} must be >= 2", side);
  std::iota(rows.begin(), rows.end(), 0);
  std::iota(cols.begin(), cols.end(), 0);
}

static void shuffle_in_place(std::vector<int>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

IsingMove IsingSiteProposal::propose(const IsingState& x, Rng& rng) {
  if (cursor == 0 && shuffle) {  // a new sweep
    shuffle_in_place(rows, rng);
    shuffle_in_place(cols, rng);
  }
  const int site = rows[cursor / L] * L + cols[cursor % L];
  cursor = (cursor + 1) % (L * L);
  const int8_t s = coupled ? int8_t(rng.uniform() < 0.5 ? -1 : 1) : int8_t(-x.spin[site]);
  return {site, s};
}

}  // namespace ik::mcmc
