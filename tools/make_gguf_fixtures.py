#!/usr/bin/env python3
"""Writes the GGUF fixtures for tests/io and the fuzz seed corpus, using only the `gguf`
Python package (GGUFWriter, gguf.quants.quantize / dequantize) as the reference.

  /opt/ikvenv/bin/python tools/make_gguf_fixtures.py [--model PATH]

Outputs (all small, committed):
  tests/io/fixtures/types.gguf       every metadata value type, nested arrays, a few tensors
  tests/io/fixtures/quants.gguf      per type T: 'quant.T' (random rows quantized by gguf.quants,
                                     where it can) and 'rand.T' (random block bytes with sane f16
                                     scales), each with 'ref.<...>' = the Python-dequantized f32 rows;
                                     general.alignment = 64
  tests/io/fixtures/smollm_rows.gguf real rows of the default model: 'raw.<tensor>#<row>' (bytes as
                                     stored) and 'ref.<tensor>#<row>' (Python-dequantized f32)
  tests/fuzz/seeds/gguf/*.gguf       tiny valid files for the fuzzer
"""
import argparse
import os
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "io" / "fixtures"
SEEDS = ROOT / "tests" / "fuzz" / "seeds" / "gguf"
DEFAULT_MODEL = ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

# Byte offsets of the f16 scale fields inside one block, per type (all other bytes may be anything).
F16_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0], Q.IQ4_NL: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}
QUANTIZABLE = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.BF16]


def dequant(raw: np.ndarray, qtype: Q) -> np.ndarray:
    out = gguf.quants.dequantize(raw, qtype)
    return np.ascontiguousarray(out, dtype=np.float32)


def add_raw(w: gguf.GGUFWriter, name: str, raw: np.ndarray, qtype: Q) -> None:
    w.add_tensor(name, np.ascontiguousarray(raw, dtype=np.uint8), raw_dtype=qtype)


def random_blocks(rng, qtype: Q, rows: int, n: int) -> np.ndarray:
    block, size = GGML_QUANT_SIZES[qtype]
    nb = n // block
    raw = rng.integers(0, 256, size=(rows, nb, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scale = (rng.standard_normal((rows, nb)) * 0.02).astype(np.float16)
        raw[:, :, off:off + 2] = scale.view(np.uint8).reshape(rows, nb, 2)
    return raw.reshape(rows, nb * size)


def make_quants(rng) -> None:
    w = gguf.GGUFWriter(str(FIX / "quants.gguf"), "test")
    w.add_custom_alignment(64)
    rows, n = 4, 256
    # F32 and F16 (with special values: signed zero, subnormals, max, inf).
    x = rng.standard_normal((rows, n)).astype(np.float32)
    add_raw(w, "quant.F32", x.view(np.uint8), Q.F32)
    w.add_tensor("ref.quant.F32", dequant(x.view(np.uint8), Q.F32))
    h = (rng.standard_normal((rows, n)) * 3).astype(np.float16)
    h[0, :6] = np.array([-0.0, 6e-8, -3e-5, 65504, np.inf, -np.inf], dtype=np.float16)
    add_raw(w, "quant.F16", h.view(np.uint8), Q.F16)
    w.add_tensor("ref.quant.F16", dequant(h.view(np.uint8), Q.F16))
    # Types gguf.quants can quantize: random normal rows, one of them all zeros.
    for qtype in QUANTIZABLE:
        data = rng.standard_normal((rows, n)).astype(np.float32) * np.float32(0.1)
        data[1] = 0
        data[2, :32] *= 100
        raw = gguf.quants.quantize(data, qtype)
        add_raw(w, f"quant.{qtype.name}", raw, qtype)
        w.add_tensor(f"ref.quant.{qtype.name}", dequant(raw, qtype))
    # Every block type: random block bytes with sane f16 scales (gguf.quants cannot quantize
    # K-quants or IQ4_NL, and random bytes reach codes a quantizer never emits).
    for qtype in F16_FIELDS:
        block, _ = GGML_QUANT_SIZES[qtype]
        r, m = (2, 512) if block == 256 else (rows, n)
        raw = random_blocks(rng, qtype, r, m)
        add_raw(w, f"rand.{qtype.name}", raw, qtype)
        w.add_tensor(f"ref.rand.{qtype.name}", dequant(raw, qtype))
    finish(w)


def make_types(rng) -> None:
    """Every metadata type; the test asserts these literal values."""
    w = gguf.GGUFWriter(str(FIX / "types.gguf"), "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 3.14159)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 2.718281828459045)
    w.add_bool("t.true", True)
    w.add_bool("t.false", False)
    w.add_string("t.str", "h\u00e9llo w\u00f6rld \U0001F999\n\ttab")
    w.add_key_value("t.empty", "", gguf.GGUFValueType.STRING)
    w.add_array("t.ints", [1, -2, 3, 2147483647])
    w.add_array("t.floats", [0.5, -1.25, 1e-6])
    w.add_array("t.strs", ["a", "", "\u4f60\u597d"])
    w.add_array("t.bools", [True, False, True])
    w.add_array("t.nested", [[1, 2], [3, 4, 5]])
    w.add_key_value("t.u8s", [1, 2, 255], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8)
    w.add_block_count(2)
    w.add_tensor("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("b", np.arange(4, dtype=np.float16))
    w.add_tensor("c.weight", np.full((1, 2, 3, 4), 0.5, dtype=np.float32))
    finish(w)


def make_smollm_rows(model: Path) -> None:
    r = gguf.GGUFReader(str(model))
    tensors = {t.name: t for t in r.tensors}
    picks = [("token_embd.weight", [0, 1, 100, 49151]), ("blk.0.attn_q.weight", [0, 575]),
             ("blk.29.ffn_down.weight", [7]), ("blk.0.attn_norm.weight", [0]),
             ("output_norm.weight", [0])]
    w = gguf.GGUFWriter(str(FIX / "smollm_rows.gguf"), "test")
    w.add_string("source.file", model.name)
    for name, row_ids in picks:
        t = tensors[name]
        data = np.asarray(t.data)
        if data.ndim == 1:
            data = data.reshape(1, -1)
        for row in row_ids:
            raw = np.ascontiguousarray(data[row:row + 1]).view(np.uint8)
            add_raw(w, f"raw.{name}#{row}", raw, t.tensor_type)
            w.add_tensor(f"ref.{name}#{row}", dequant(raw, t.tensor_type))
    finish(w)


def make_seeds(rng) -> None:
    SEEDS.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(SEEDS / "meta.gguf"), "llama")
    w.add_uint32("llama.block_count", 1)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "<s>"])
    w.add_array("t.nested", [[1, 2], [3]])
    w.add_bool("t.b", True)
    w.add_tensor("x", np.arange(4, dtype=np.float32))
    finish(w)
    w = gguf.GGUFWriter(str(SEEDS / "quants.gguf"), "llama")
    w.add_custom_alignment(16)
    for qtype in [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.IQ4_NL, Q.Q2_K, Q.Q3_K, Q.Q4_K,
                  Q.Q5_K, Q.Q6_K]:
        block, _ = GGML_QUANT_SIZES[qtype]
        add_raw(w, qtype.name, random_blocks(rng, qtype, 1, block), qtype)
    add_raw(w, "bf16", rng.integers(0, 256, size=(2, 8), dtype=np.uint8), Q.BF16)
    add_raw(w, "f16", rng.integers(0, 256, size=(2, 8), dtype=np.uint8), Q.F16)
    finish(w)
    # The same layout as version 2 (v3 only added big-endian files).
    data = bytearray((SEEDS / "meta.gguf").read_bytes())
    data[4] = 2
    (SEEDS / "meta_v2.gguf").write_bytes(bytes(data))


def finish(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()
    FIX.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    make_types(rng)
    make_quants(rng)
    make_seeds(rng)
    if args.model.exists():
        make_smollm_rows(args.model)
    else:
        print(f"note: {args.model} not found; smollm_rows.gguf not regenerated")
    for p in sorted(list(FIX.glob("*.gguf")) + list(SEEDS.glob("*.gguf"))):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
