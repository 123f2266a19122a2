// Conformance of the standard interpreter with node on random programs of the subset:
// against the committed fixture (node's outputs, made by tools/explain_node_fixture.sh),
// and, when node is on PATH, against node live on a fresh batch.
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "explain/interp.hpp"
#include "explain/random_program.hpp"

using namespace ik::explain;

static std::vector<std::string> read_gz_lines(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::string text;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, n);
  gzclose(f);
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(line);
  return lines;
}

static std::string ours(const std::string& program) {
  try {
    return show(evaluate_source(program));
  } catch (const ik::Error& e) {
    return std::string("error: ") + e.what();
  }
}

// Compares and reports the first few mismatches.
static size_t count_mismatches(const std::vector<std::string>& programs, const std::vector<std::string>& node) {
  size_t bad = 0;
  for (size_t i = 0; i < programs.size(); i++) {
    std::string mine = ours(programs[i]);
    if (mine == node[i]) continue;
    if (++bad <= 10) ADD_FAILURE() << programs[i] << "\n  node: " << node[i] << "\n  ours: " << mine;
  }
  return bad;
}

TEST(ExplainNode, StandardInterpreterMatchesNodeFixture) {
  auto lines = read_gz_lines(IK_SOURCE_DIR "/tests/explain/data/node_outputs.txt.gz");
  ASSERT_FALSE(lines.empty()) << "missing fixture; run tools/explain_node_fixture.sh";
  unsigned long long seed = 0, count = 0;
  char crc_hex[16] = {0};
  ASSERT_EQ(std::sscanf(lines[0].c_str(), "# seed %llu count %llu programs_crc32 %8s", &seed, &count, crc_hex), 3);
  ASSERT_GE(count, 20000u);
  ASSERT_EQ(lines.size(), count + 1);
  auto programs = random_programs(count, seed);
  // The generator must still produce the programs node evaluated.
  std::string all;
  for (auto& p : programs) all += p + "\n";
  unsigned long crc = crc32(0L, reinterpret_cast<const Bytef*>(all.data()), static_cast<uInt>(all.size()));
  ASSERT_EQ(crc, std::stoul(crc_hex, nullptr, 16)) << "the generator changed: regenerate the fixture";
  std::vector<std::string> node(lines.begin() + 1, lines.end());
  EXPECT_EQ(count_mismatches(programs, node), 0u);
}

TEST(ExplainNode, StandardInterpreterMatchesLiveNode) {
  if (std::system("command -v node > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not on PATH";
  // A fresh batch each run; the seed is printed so that a failure can be reproduced.
  uint64_t seed = 1000 + static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000;
  std::printf("live node batch: seed %llu\n", static_cast<unsigned long long>(seed));
  auto programs = random_programs(20000, seed);
  auto dir = std::filesystem::temp_directory_path() / ("explain_node_" + std::to_string(seed));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "programs.txt");
    for (auto& p : programs) f << p << "\n";
  }
  std::string cmd = "node " IK_SOURCE_DIR "/tools/explain_node_eval.js < " + (dir / "programs.txt").string() + " > " +
                    (dir / "outputs.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<std::string> node;
  std::ifstream in(dir / "outputs.txt");
  for (std::string line; std::getline(in, line);) node.push_back(line);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(node.size(), programs.size());
  EXPECT_EQ(count_mismatches(programs, node), 0u);
}
