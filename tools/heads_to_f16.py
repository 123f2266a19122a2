"""Write a copy of a draft-heads file (from `inferkit hydra train`) with its tensors in f16: half
the bytes, for the GPU machine's 64 MiB transfer (bench/spec/gpu.sh). Do not commit the output.
Usage: /opt/ikvenv/bin/python tools/heads_to_f16.py IN.gguf OUT.gguf"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf_copy import finish, writer_like


def main(src, dst):
    r = GGUFReader(src)
    wr = writer_like(r, dst)
    for t in r.tensors:
        wr.add_tensor(t.name, np.asarray(t.data, dtype=np.float32).astype(np.float16))
    finish(wr)
    print(f"{dst}: {len(r.tensors)} tensors in f16")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
