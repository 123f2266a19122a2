"""Write a copy of a GGUF model that keeps only its first K transformer blocks (metadata, tokenizer,
embeddings and output head unchanged, `<arch>.block_count` set to K): real weights small enough
for the GPU machine's 64 MiB transfer (bench/cuda/real_weights.sh). Do not commit the output.
Usage: /opt/ikvenv/bin/python tools/truncate_gguf.py IN.gguf OUT.gguf K"""
import re
import sys

from gguf import GGUFReader, GGUFValueType, GGUFWriter


def main(src, dst, keep):
    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    wr = GGUFWriter(dst, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = keep if name == f"{arch}.block_count" else f.contents()
        sub = f.types[1] if f.types[0] == GGUFValueType.ARRAY else None
        wr.add_key_value(name, value, f.types[0], sub_type=sub)
    kept = 0
    for t in r.tensors:
        m = re.match(r"blk\.(\d+)\.", t.name)
        if m and int(m.group(1)) >= keep:
            continue
        wr.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
        kept += 1
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    print(f"{dst}: {keep} blocks, {kept} tensors")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
