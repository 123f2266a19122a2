#!/usr/bin/env python3
"""Writes a tiny random Llama checkpoint with transformers (and a tiny byte-level BPE
tokenizer trained offline with `tokenizers`) to tests/io/fixtures/tiny_llama/, plus
tests/io/fixtures/mixed.safetensors (F32/F16/BF16 tensors with known values).

  /opt/ikvenv/bin/python tools/make_tiny_hf_llama.py

tiny_llama/: config.json, model.safetensors (bf16), generation_config.json, tokenizer.json,
tokenizer_config.json, and reference.json: logits of the model for one prompt, computed by
transformers in float32 from the same bf16 weights (for engine tests).
"""
import codecs
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "io" / "fixtures"
OUT = FIX / "tiny_llama"

with contextlib.redirect_stdout(io.StringIO()):
    import this  # the Zen of Python is part of the training text

TEXT = [
    codecs.decode(this.s, "rot13"),
    "The quick brown fox jumps over the lazy dog. 0123456789 3.14159 2718",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5\n",
    "Grüße aus Köln! Ça va? 你好，世界。 Привет, мир! 🦙🚀 emoji and   spaces\t\ttabs\n\n",
    "User: What is the capital of France?\nAssistant: The capital of France is Paris.",
]


def train_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=320, min_frequency=2, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TEXT * 20, trainer=trainer)
    return tok


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tok = train_tokenizer()
    vocab = tok.get_vocab_size()
    chat = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
            " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = chat
    fast.save_pretrained(OUT)

    config = LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tok.token_to_id("<|im_start|>"), eos_token_id=tok.token_to_id("<|im_end|>"))
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(OUT, safe_serialization=True)

    # Reference logits in float32 from the stored bf16 weights.
    model = model.float().eval()
    prompt = "The quick brown fox"
    ids = tok.encode(prompt).ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    ref = {"prompt": prompt, "input_ids": ids,
           "last_logits": [round(float(x), 6) for x in logits[-1]],
           "argmax_per_position": [int(x) for x in logits.argmax(-1)]}
    (OUT / "reference.json").write_text(json.dumps(ref) + "\n")

    # Known values in each float dtype for the safetensors reader test.
    mixed = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.5),
        "f16": np.array([1.0, -2.5, 65504.0, 6e-8], dtype=np.float16),
        "bf16_bits": np.array([0x3F80, 0xC020, 0x0000, 0x7F80], dtype=np.uint16),  # 1, -2.5, 0, inf
        "i64": np.array([[1, -2]], dtype=np.int64),
    }
    torch_mixed = {k: torch.from_numpy(v) for k, v in mixed.items() if k != "bf16_bits"}
    torch_mixed["bf16"] = torch.from_numpy(mixed["bf16_bits"].view(np.int16)).view(torch.bfloat16)
    from safetensors.torch import save_file as save_torch
    save_torch(torch_mixed, str(FIX / "mixed.safetensors"), metadata={"format": "pt", "note": "ik"})

    for p in sorted(list(OUT.iterdir()) + [FIX / "mixed.safetensors"]):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
