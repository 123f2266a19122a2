#pragma once
// tp-bench --device cuda: tensor parallelism over GPUs through NCCL (cmd_tp_gpu.cpp).
#include <cstdint>
#include <string>
#include <vector>

namespace ik::cli {

struct TpGpuBench {
  int gpus = 1;                          // processes, one per GPU (forked here, no mpirun)
  std::string config = "llama3-8b";      // random-weight shape (llm::preset_config)
  int layers = 0;                        // override the shape's layer count (0: keep)
  uint64_t seed = 1;
  std::vector<std::string> variants;     // standard, ladder, parallel, desync
  std::vector<int> batches = {1, 4, 16, 64};
  int prompt_tokens = 1024, gen_tokens = 128, prefill_tokens = 2048, repeat = 2;
  double timeout = 120;
  bool check = false;  // compare every variant's logits and greedy tokens with one GPU instead
};

void run_tp_bench_gpu(const TpGpuBench& a);

}  // namespace ik::cli
