#!/usr/bin/env python3
"""llama.cpp baseline for the engine benchmark: prefill and decode tokens/s on a GGUF.

Run with the venv that bench/engine/llamacpp_setup.sh builds:

    .cache/llamacpp-venv/bin/python bench/engine/llamacpp_bench.py \
        [-m .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf] [--threads 2] \
        [--prompt-tokens 512] [--gen-tokens 128] [--reps 3]

It does what `inferkit bench` does, on the same token ids:
  * prompt: token i = 100 + (i * 37) % (n_vocab - 100), i = 0..prompt_tokens-1
    (the same formula as apps/inferkit/cmd_bench.cpp);
  * prefill: the whole prompt into an empty KV cache (llama.cpp batches of --batch);
  * decode: then gen_tokens greedy tokens, one at a time (argmax of the logits);
  * each figure is the best of --reps runs, every run starting from an empty cache.
Timing: wall clock around the llama-cpp-python calls (Llama.eval, i.e. llama_decode, then
llama_get_logits_ith, which waits for the compute, and a numpy argmax), like inferkit bench's
forward + argmax. The Python wrapper adds a few tens of microseconds per decoded token.
Prints one JSON line (peak_rss_mb is the whole Python process).
"""

import argparse
import json
import pathlib
import resource
import sys
import time

import numpy as np
import llama_cpp

REPO = pathlib.Path(__file__).resolve().parent.parent.parent


def bench_prompt(n_vocab, n):
    return [100 + (i * 37) % (n_vocab - 100) for i in range(n)]


def greedy_next(llm):
    """argmax of the last position's logits. Reading them also waits for llama.cpp's
    compute (llama_get_logits_ith synchronizes), so the timing covers the whole decode."""
    logits = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return int(np.argmax(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),))))


def one_run(llm, prompt, gen_tokens):
    """Prefill then greedy decode from an empty cache; returns (prefill s, decode s)."""
    llm.reset()  # n_tokens = 0: eval() then drops every cached position
    t0 = time.perf_counter()
    llm.eval(prompt)
    token = greedy_next(llm)
    t1 = time.perf_counter()
    generated = []
    for _ in range(gen_tokens):
        llm.eval([token])
        token = greedy_next(llm)
        generated.append(token)
    t2 = time.perf_counter()
    assert llm.n_tokens == len(prompt) + gen_tokens
    assert any(generated), "decode produced only token 0: logits not read?"
    return t1 - t0, t2 - t1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-m", "--model", type=pathlib.Path,
                   default=REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--gen-tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=512, help="llama.cpp n_batch / n_ubatch")
    a = p.parse_args()
    for name in ("threads", "prompt_tokens", "gen_tokens", "reps", "batch"):
        if getattr(a, name) < 1:
            sys.exit(f"error: --{name.replace('_', '-')} must be positive")
    if not a.model.is_file():
        sys.exit(f"error: model not found: {a.model}")

    llm = llama_cpp.Llama(model_path=str(a.model), n_ctx=a.prompt_tokens + a.gen_tokens + 16,
                          n_batch=a.batch, n_ubatch=a.batch, n_threads=a.threads,
                          n_threads_batch=a.threads, logits_all=False, verbose=False)
    prompt = bench_prompt(llm.n_vocab(), a.prompt_tokens)
    runs = [one_run(llm, prompt, a.gen_tokens) for _ in range(a.reps)]
    prefill_s, decode_s = (min(r[i] for r in runs) for i in range(2))
    print(json.dumps({
        "engine": "llama.cpp", "version": llama_cpp.__version__,
        "prefill_tok_s": round(a.prompt_tokens / prefill_s, 2),
        "decode_tok_s": round(a.gen_tokens / decode_s, 2),
        "threads": a.threads, "prompt_tokens": a.prompt_tokens, "gen_tokens": a.gen_tokens,
        "reps": a.reps, "batch": a.batch,
        # whole process: the Python interpreter and numpy are included
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
