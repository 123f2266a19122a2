#!/usr/bin/env python3
"""Reference logits and greedy tokens from Hugging Face transformers, for the engine test.

Run with the tools venv (torch + transformers + gguf + accelerate, CPU only):

    /opt/ikvenv/bin/python tools/make_reference.py
        [--model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--out tests/llm/fixtures/hf_reference.json]
    /opt/ikvenv/bin/python tools/make_reference.py --hf-dir tests/io/fixtures/tiny_llama \
        --out tests/llm/fixtures/tiny_llama_reference.json

Why this is an independent reference: nothing here is our code. transformers reads the
GGUF itself (`from_pretrained(dir, gguf_file=name)`), dequantizes every tensor to float32
with the `gguf` package's reference dequantizers, and runs its own LlamaForCausalLM in
float32 with eager attention (plain matmul + softmax, no fused SDPA kernel).

Two GGUF details the C++ engine must reproduce, checked in transformers 5.24
(modeling_gguf_pytorch_utils.py):

* Q/K permutation. llama.cpp's convert_hf_to_gguf.py permutes the rows of attn_q and
  attn_k so that llama.cpp's "normal" RoPE (rotating adjacent pairs (2i, 2i+1)) gives the
  same result as HF's rotate_half RoPE (rotating (i, i + head_dim/2)). When loading,
  LlamaTensorProcessor._reverse_permute_weights undoes it: rows are reshaped to
  (n_head, 2, head_dim/2) after the permutation, i.e. w.reshape(n_head, head_dim/2, 2, in)
  .swapaxes(1, 2), with n_head = num_key_value_heads (3) for attn_k and
  num_attention_heads (9) for attn_q. HF then applies rotate_half RoPE. So an engine that
  keeps the GGUF rows as stored must use the adjacent-pair RoPE (llama.cpp's
  LLAMA_ROPE_TYPE_NORM); the logits are identical either way up to float rounding.
* Tied embeddings. SmolLM2's GGUF has no output.weight; transformers then sets
  tie_word_embeddings=True and lm_head.weight IS model.embed_tokens.weight (the same
  tensor, checked below), i.e. token_embd.weight dequantized from its stored Q8_0 (the
  Q4_1 file keeps token_embd in Q8_0). The LM head must use that Q8_0 tensor.

Other config read from the GGUF: rms_norm_eps = 9.999999747378752e-06 (float32 1e-5),
rope_theta = 100000, 30 layers, 9 query heads, 3 KV heads, head_dim 64, vocab 49152.
The tokenizer is also converted from the GGUF metadata (byte-level BPE, no BOS added
to plain text); the chat prompt uses the GGUF's ChatML template via apply_chat_template.

Fixture format (compact JSON, logits float32 printed with 9 significant digits):
  {"generator", "versions": {...}, "model": {"file", "sha256", "bytes"}, "settings": {...},
   "cases": [{"name", "prompt", "chat", "input_ids": [...],
              "greedy_ids": [64 ids], "greedy_text",
              "greedy_margins": [64 x (top-1 minus top-2 logit) at each greedy step],
              "top_ids": [32 positions x 20 ids], "top_logits": [32 x 20 floats]}]}
Generation: do_sample=False, exactly 64 new tokens, EOS does not stop it and is not
suppressed (the plain argmax continues). top_ids/top_logits come from ONE forward pass
over input_ids + greedy_ids; row p holds the logits that predict token p+1, prompt
positions first, sorted by logit descending. A near-zero greedy margin marks a step
where a different (still correct) float rounding may pick another token.
"""

import argparse
import hashlib
import json
import pathlib
import platform
import sys

import numpy as np
import torch

REPO = pathlib.Path(__file__).resolve().parent.parent
NEW_TOKENS = 64
POSITIONS = 32
TOP_K = 20

# name, text, chat (apply the chat template), a word the greedy answer must contain
GGUF_PROMPTS = [
    ("chat_question", "What is the capital of France? Answer in one sentence.", True, "Paris"),
    ("plain_english", "The old lighthouse keeper climbed the narrow stairs every evening, and on the "
     "night of the great storm he noticed", False, None),
    ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", False, None),
    ("numbers", "Prices in 2023: 1 apple = $0.45, 12 eggs = $3.99, 3.5 kg rice = $7.20. "
     "Total for 2 apples and 24 eggs:", False, None),
    ("multilingual", "Bonjour, ça va ? Größe: 10 µm. 東京は日本の首都です。Привет, мир! 🚀✨ "
     "In English, this means:", False, None),
]

# The tiny random checkpoint may have no real tokenizer: prompts are fixed id lists,
# mapped into its vocabulary.
TINY_PROMPTS = [
    ("ids_a", [1, 15, 27, 300, 4, 99, 123, 7, 7, 7, 250, 31]),
    ("ids_b", [5, 200, 201, 202, 17, 3, 88]),
]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def f32(x):
    """A float32 value as the shortest JSON number with 9 significant digits."""
    return float(f"{float(np.float32(x)):.9g}")


def versions():
    import importlib.metadata as md
    import transformers
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "gguf": md.version("gguf"),
            "numpy": np.__version__}


def greedy_reference(model, input_ids):
    """64 greedy tokens, then the top-k logits of one full forward pass."""
    from transformers import GenerationConfig
    prompt = torch.tensor([input_ids], dtype=torch.long)
    # generate() fills None fields from model.generation_config, so clear its EOS there too.
    model.generation_config.eos_token_id = None
    config = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=None,
                              pad_token_id=0, num_beams=1, repetition_penalty=1.0)
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=config)
        greedy = out[0, len(input_ids):].tolist()
        assert len(greedy) == NEW_TOKENS, f"got {len(greedy)} tokens"
        logits = model(out, use_cache=False).logits[0].float()  # [seq, vocab]

    # generate() (KV cache) and the full pass must agree on every greedy step.
    step_logits = logits[len(input_ids) - 1: len(input_ids) - 1 + NEW_TOKENS]
    top2 = torch.topk(step_logits, 2, dim=-1)
    margins = (top2.values[:, 0] - top2.values[:, 1]).tolist()
    for i, (tok, best) in enumerate(zip(greedy, top2.indices[:, 0].tolist())):
        assert tok == best or margins[i] < 1e-3, f"step {i}: generate chose {tok}, full pass {best}"

    top = torch.topk(logits[:POSITIONS], TOP_K, dim=-1)
    assert logits.shape[0] >= POSITIONS
    return {
        "greedy_ids": greedy,
        "greedy_margins": [f32(m) for m in margins],
        "top_ids": top.indices.tolist(),
        "top_logits": [[f32(v) for v in row] for row in top.values.tolist()],
    }


def gguf_reference(model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    directory, name = str(model_path.parent), model_path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm head not tied"

    cases = []
    for case_name, text, chat, expect in GGUF_PROMPTS:
        if chat:
            input_ids = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                      add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"]
        else:
            input_ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        ref = greedy_reference(model, input_ids)
        greedy_text = tokenizer.decode(ref["greedy_ids"])
        print(f"--- {case_name} ({len(input_ids)} prompt tokens, min greedy margin "
              f"{min(ref['greedy_margins']):.4f})\n{text!r}\n=> {greedy_text!r}", file=sys.stderr)
        if expect is not None:
            assert expect in greedy_text, f"{case_name}: expected {expect!r} in the answer"
        cases.append({"name": case_name, "prompt": text, "chat": chat, "input_ids": list(input_ids),
                      **ref, "greedy_text": greedy_text})
    model_info = {"file": name, "sha256": sha256_of(model_path), "bytes": model_path.stat().st_size}
    return model_info, cases


def hf_dir_reference(hf_dir):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    vocab = model.config.vocab_size
    cases = []
    for case_name, ids in TINY_PROMPTS:
        input_ids = [i % vocab for i in ids]
        ref = greedy_reference(model, input_ids)
        print(f"--- {case_name}: {input_ids} => {ref['greedy_ids'][:16]}...", file=sys.stderr)
        cases.append({"name": case_name, "prompt": None, "chat": False, "input_ids": input_ids, **ref})
    files = sorted(p for p in hf_dir.iterdir() if p.suffix == ".safetensors" or p.name == "config.json")
    model_info = {"dir": str(hf_dir.relative_to(REPO)) if hf_dir.is_relative_to(REPO) else str(hf_dir),
                  "sha256": {p.name: sha256_of(p) for p in files}}
    return model_info, cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path,
                        default=REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf", help="GGUF file")
    parser.add_argument("--hf-dir", type=pathlib.Path, help="safetensors + config.json checkpoint instead")
    parser.add_argument("--out", type=pathlib.Path, help="output JSON")
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)
    if args.hf_dir:
        model_info, cases = hf_dir_reference(args.hf_dir.resolve())
        out = args.out or REPO / "tests/llm/fixtures/tiny_llama_reference.json"
    else:
        if not args.model.is_file():
            sys.exit(f"error: model not found: {args.model} (run `make setup` to fetch it)")
        model_info, cases = gguf_reference(args.model.resolve())
        out = args.out or REPO / "tests/llm/fixtures/hf_reference.json"

    fixture = {
        "generator": "tools/make_reference.py",
        "versions": versions(),
        "model": model_info,
        "settings": {"dtype": "float32", "attn_implementation": "eager", "torch_threads": 2,
                     "new_tokens": NEW_TOKENS, "positions": POSITIONS, "top_k": TOP_K,
                     "greedy": "argmax; EOS neither stops nor is suppressed"},
        "cases": cases,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
