#!/usr/bin/env python3
"""The peer for `inferkit bench --device cuda`: PyTorch + Hugging Face transformers on the same
model shape (random bf16 weights), batch-1 decode at a given context and prefill of a long
prompt; eager with the default dynamic cache, then a static cache + torch.compile if it runs.
Prints one JSON line per mode. Run on the GPU machine (bench/cuda/run.sh)."""
import argparse, json, sys, time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "llama3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0, tie_word_embeddings=True),
}


def timed(fn, reps):
    best = 1e30
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="llama3-8b", choices=sorted(SHAPES))
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--prefill", type=int, default=2048)
    ap.add_argument("--compile", action="store_true", help="also static cache + torch.compile")
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = LlamaConfig(max_position_embeddings=8192, rms_norm_eps=1e-5, **SHAPES[a.config])
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.randint(100, cfg.vocab_size, (1, a.context), device="cuda")
    long_ids = torch.randint(100, cfg.vocab_size, (1, a.prefill), device="cuda")

    with torch.inference_mode():
        prefill_s = timed(lambda: model(long_ids, use_cache=False, logits_to_keep=1), 3)

        def decode_eager():
            out = model(ids, use_cache=True, logits_to_keep=1)
            cache, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(a.gen):
                out = model(tok, past_key_values=cache, use_cache=True)
                cache, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            return (time.perf_counter() - t0) / a.gen

        decode_eager()
        step = min(decode_eager() for _ in range(2))
        print(json.dumps({"engine": "hf-eager", "model": a.config, "ms_per_token": step * 1e3,
                          "decode_tok_s": 1 / step, "prefill_tok_s": a.prefill / prefill_s}), flush=True)

        if a.compile:
            try:
                t0 = time.perf_counter()
                model.generation_config.cache_implementation = "static"
                model.forward = torch.compile(model.forward, mode="default")
                gen_kwargs = dict(max_new_tokens=a.gen, min_new_tokens=a.gen, do_sample=False)
                model.generate(ids, **gen_kwargs)  # compile + warm up
                model.generate(ids, **gen_kwargs)
                compile_s = time.perf_counter() - t0
                # generate() includes the prefill of the context: subtract it, timed the same way.
                pre = timed(lambda: model.generate(ids, max_new_tokens=1, do_sample=False), 2)
                total = timed(lambda: model.generate(ids, **gen_kwargs), 2)
                step = (total - pre) / (a.gen - 1)
                print(json.dumps({"engine": "hf-static-compile", "model": a.config, "ms_per_token": step * 1e3,
                                  "decode_tok_s": 1 / step, "compile_s": compile_s}), flush=True)
            except Exception as e:  # report, do not fail the whole benchmark
                print(json.dumps({"engine": "hf-static-compile", "error": str(e).splitlines()[0][:200]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
