"""Write an IQ4_NL copy of a GGUF model (for the IQ4_NL perplexity row of docs/quantization.md):
the block matrices (attn_q/k/v/output, ffn_gate/up/down) are dequantized and requantized to
IQ4_NL with llama.cpp's reference algorithm (quantize_row_iq4_nl_impl without an importance
matrix: weights x^2, initial scale -max/values[0], then a search over 15 scales, best weighted
least-squares fit); everything else (embeddings, norms, metadata) is copied unchanged.
The gguf package only dequantizes IQ4_NL, hence the quantizer here. Do not commit the output.
Usage: /opt/ikvenv/bin/python tools/make_iq4_nl_model.py IN.gguf OUT.gguf"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFReader
from gguf.quants import dequantize
from gguf_copy import finish, writer_like

VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)
MATRICES = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
            "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")


def nearest(v):
    """Index of the nearest IQ4_NL value (ties to the lower), like best_index_int8."""
    mid = (VALUES[1:] + VALUES[:-1]) / 2
    return np.searchsorted(mid, v, side="left")


def fit(x, w, idx):
    q = VALUES[idx]
    return (w * q * x).sum(1), (w * q * q).sum(1)


def quantize_iq4_nl(x):
    """x [n, 32] float32 -> IQ4_NL bytes [n, 18]."""
    w = x * x
    imax = np.abs(x).argmax(1)
    mx = x[np.arange(len(x)), imax]
    live = np.abs(mx) > 1e-15
    mx = np.where(live, mx, 1.0)
    d = -mx / VALUES[0]
    sqx, sq2 = fit(x, w, nearest(x / d[:, None]))
    d = np.where(sq2 > 0, sqx / np.where(sq2 > 0, sq2, 1), d)
    best = d * sqx
    for itry in range(-7, 8):
        idn = (itry + VALUES[0]) / mx
        sqx, sq2 = fit(x, w, nearest(x * idn[:, None]))
        better = (sq2 > 0) & (sqx * sqx > best * sq2)
        d = np.where(better, sqx / np.where(sq2 > 0, sq2, 1), d)
        best = np.where(better, d * sqx, best)
    d16 = np.where(live, d, 0).astype(np.float16)
    d32 = d16.astype(np.float32)
    q = nearest(x / np.where(d32 != 0, d32, 1)[:, None]).astype(np.uint8)
    out = np.empty((len(x), 18), np.uint8)
    out[:, :2] = d16.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out


def main(src, dst):
    r = GGUFReader(src)
    wr = writer_like(r, dst)
    converted = 0
    for t in r.tensors:
        if t.name.endswith(MATRICES) and t.tensor_type != T.IQ4_NL:
            k = int(t.shape[0])
            x = dequantize(t.data, t.tensor_type).reshape(-1, 32).astype(np.float32)
            blocks = np.concatenate([quantize_iq4_nl(x[i:i + 65536]) for i in range(0, len(x), 65536)])
            data = blocks.reshape(-1, k // 32 * 18)
            wr.add_tensor(t.name, data, raw_dtype=T.IQ4_NL)
            converted += 1
        else:
            wr.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    finish(wr)
    print(f"{dst}: {converted} matrices as IQ4_NL")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
