"""Write a copy of a GGUF model that keeps only its first K transformer blocks (metadata, tokenizer,
embeddings and output head unchanged, `<arch>.block_count` set to K): real weights small enough
for the GPU machine's 64 MiB transfer (bench/cuda/real_weights.sh). Do not commit the output.
Usage: /opt/ikvenv/bin/python tools/truncate_gguf.py IN.gguf OUT.gguf K"""
import re
import sys

from gguf import GGUFReader
from gguf_copy import finish, writer_like


def main(src, dst, keep):
    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    wr = writer_like(r, dst, {f"{arch}.block_count": keep})
    kept = 0
    for t in r.tensors:
        m = re.match(r"blk\.(\d+)\.", t.name)
        if m and int(m.group(1)) >= keep:
            continue
        wr.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
        kept += 1
    finish(wr)
    print(f"{dst}: {keep} blocks, {kept} tensors")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
