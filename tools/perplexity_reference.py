#!/usr/bin/env python3
"""Reference perplexity from Hugging Face transformers, for tests/llm/eval/test_perplexity.cpp.

    /opt/ikvenv/bin/python tools/perplexity_reference.py
        [--model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--text tests/llm/fixtures/perplexity_text.txt] [--ctx 128]
        [--out tests/llm/fixtures/perplexity_reference.json]

Independent of our code: transformers reads the GGUF itself (dequantizing every tensor to
float32 with the `gguf` package), tokenizes with its own GGUF-converted tokenizer and runs its
own LlamaForCausalLM in float32 with eager attention. The perplexity definition is llama.cpp's
(tools/perplexity/perplexity.cpp, perplexity()): the tokens (with BOS if the model adds one)
are cut into floor(n / ctx) non-overlapping windows; each window runs from an empty cache
(with its first token replaced by BOS when the model adds BOS); positions ctx/2 .. ctx-2 are
scored, each predicting the next token; ppl = exp(mean NLL).
"""

import argparse
import json
import math
import pathlib

import torch

REPO = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--text", default=str(REPO / "tests/llm/fixtures/perplexity_text.txt"))
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--out", default=str(REPO / "tests/llm/fixtures/perplexity_reference.json"))
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(2)
    path = pathlib.Path(args.model)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    text = pathlib.Path(args.text).read_text(encoding="utf-8")
    ids = tok(text, add_special_tokens=True)["input_ids"]
    plain = tok(text, add_special_tokens=False)["input_ids"]
    bos = tok.bos_token_id if len(ids) > len(plain) else None
    ctx, first = args.ctx, args.ctx // 2
    n_windows = len(ids) // ctx
    nll, count = 0.0, 0
    with torch.no_grad():
        for w in range(n_windows):
            window = list(ids[w * ctx:(w + 1) * ctx])
            if bos is not None:
                window[0] = bos
            logits = model(torch.tensor([window])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            for i in range(first, ctx - 1):
                nll -= logp[i, ids[w * ctx + i + 1]].item()
                count += 1
    ppl = math.exp(nll / count)
    out = {"generator": "tools/perplexity_reference.py", "model": path.name, "text": pathlib.Path(args.text).name,
           "ctx": ctx, "n_tokens": len(ids), "n_windows": n_windows, "n_scored": count, "bos": bos is not None,
           "ppl": ppl}
    pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
