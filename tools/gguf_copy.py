"""Shared by the tools that write a modified copy of a GGUF file (truncate_gguf.py,
make_iq4_nl_model.py): a writer holding the source's metadata, and the final write."""
from gguf import GGUFValueType, GGUFWriter


def writer_like(reader, dst, overrides=None):
    """A GGUFWriter for dst with every metadata key of reader; overrides: {key: value} replacing some."""
    overrides = overrides or {}
    arch = reader.fields["general.architecture"].contents()
    wr = GGUFWriter(dst, arch)
    for name, f in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        sub = f.types[1] if f.types[0] == GGUFValueType.ARRAY else None
        wr.add_key_value(name, overrides.get(name, f.contents()), f.types[0], sub_type=sub)
    return wr


def finish(wr):
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
