#pragma once
// Random programs of the whole subset, for conformance with node: the same seed gives
// the same programs on every machine (the fixture in tests/explain/data depends on it).
#include <cstdint>
#include <string>
#include <vector>

namespace ik::explain {

std::vector<std::string> random_programs(size_t count, uint64_t seed);

}  // namespace ik::explain
