#!/usr/bin/env python3
"""Reference fixtures for the tokenizer tests (tests/llm/tokenizer/fixtures/), made with
libraries no one here wrote: `tokenizers`, `sentencepiece` and transformers' Jinja renderer.

Usage: /opt/ikvenv/bin/python tools/make_tokenizer_fixtures.py [--gguf SmolLM2-135M-Instruct.Q4_1.gguf]

Writes (all deterministic, seeded):
  corpus.json         >= 1,000 test strings: many scripts, emoji (ZWJ, skin tones, flags),
                      whitespace runs, digits, code, contractions, special-token text, edge cases
  smollm2_ids.json    ids of every corpus string from the SmolLM2 tokenizer, rebuilt from the
                      GGUF's tokens/merges with the `tokenizers` library and SmolLM2's
                      tokenizer.json pre-tokenizer (Digits individual + ByteLevel)
  spm_tiny.gguf       a SentencePiece BPE model (byte fallback, ~800 pieces) trained here with
                      `sentencepiece`, stored as GGUF tokenizer metadata only (no tensors)
  spm_ids.json        `sentencepiece` ids of every corpus string for that model
  bpe_tiny.json       a byte-level BPE tokenizer.json trained with `tokenizers` (Digits +
                      ByteLevel, added special tokens), for Tokenizer::from_hf_json
  bpe_tiny_config.json  its tokenizer_config.json (bos/eos/chat template)
  bpe_tiny_ids.json   its ids for the first 300 corpus strings
  spm_tiny_hf.json    the same SentencePiece model as a tokenizer.json (BPE + byte fallback +
                      Metaspace prepend_scheme "first", as transformers converts today), merges
                      extracted like transformers' SentencePieceExtractor; spm_tiny_hf_ids.json:
                      `tokenizers` ids (first 300 strings); spm_tiny_legacy_ids.json: ids (first
                      150) in Llama-2 / TinyLlama's layout (Prepend + Replace normalizer)
  llama3_tiny.json    a byte-level BPE with Llama-3's pre-tokenizer (Split regex + ByteLevel)
                      and ignore_merges, trained with `tokenizers`; llama3_tiny.gguf: the same
                      vocabulary as GGUF metadata (pre "llama-bpe"); llama3_tiny_ids.json (first 300)
  pretok_splits.json  piece byte lengths from `tokenizers` Split/Digits pre-tokenizers for the
                      gpt2, llama3, smollm and default (llama.cpp) regex sequences
  chat_templates.json real chat templates (SmolLM2 from the GGUF, Llama-2, Llama-3, TinyLlama,
                      plain ChatML) rendered by transformers on a few conversations
"""
import argparse
import json
import os
import random
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "llm", "tokenizer", "fixtures")

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# llama.cpp's regex sequence for tokenizer.ggml.pre = "default".
DEFAULT_REGEXES = [r"[\p{P}\$\+<=>\^~\|]+",
                   r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
                   r"\p{N}+", r"[0-9][0-9][0-9]"]

# ------------------------------------------------------------------------------------------
# Corpus

EDGE_CASES = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", "\t\t\t", " \t \n ",
    "a", "A", "0", "00", "000", "0000", "1234567890123456789012345", "3.14159265358979",
    "1,000,000.00", "-42", "+7", "2024-11-29", "12:34:56", "v1.2.3", "0x1F600", "1e-10",
    "Hello world", "Hello  world", "Hello   world", "hello\tworld", "hello\nworld", " leading",
    "trailing ", "  both  ", "don't", "I'LL", "don't I'LL", "she's", "they're", "we've", "I'm",
    "you'd", "it'll", "'s", "'", "''", "'''", "O'Neil", "rock'n'roll", "'tis", "DON'T", "I'Ll",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi!<|im_end|>\n",
    "<|im_start|>assistant\n", "text<|im_end|>more", "<|im_start", "im_start|>", "<|im_end|><|im_end|>",
    "<s>", "</s>", "<unk>", "[INST] hi [/INST]", "<<SYS>>", "<|user|>", "<|eot_id|>",
    "\u0301", "e\u0301", "\u0301\u0301\u0301", "a\u0308\u0304", "\u200d", "\u200b", "\ufeff",
    "\u00a0", "a\u00a0b", "\u2003", "\u3000", "\u2028", "\u0085", "\u000b\u000c", "\u001f",
    "\u00ad", "\ufffd", "\U0010ffff", "\ue000", "\u0000",
    "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "❤️", "🧑🏿‍💻", "👩🏼‍🦰", "🙂🙃😉", "🤖 robot",
    "#️⃣", "1️⃣2️⃣", "☕️", "©®™", "½ ⅓ ¼", "x²+y³", "①②③", "Ⅻ", "٣٤٥", "४२", "๑๒",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!", "?!?!", "...", "…", "——", "--",
    "=====", "    indented", "\tdef f(x):\n\t\treturn x", "if (a && b) { return c; }",
    "for i in range(10):\n    print(i)", "{\"key\": [1, 2, 3]}", "x=>x*2", "a<=b>=c!=d",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Windows\\System32",
    "$100", "€20", "¥300", "£4.50", "~/.bashrc", "|pipe|", "^caret^", "50%", "#hashtag", "@mention",
    "Ünïcödé", "ÀÉÎÕÜ", "straße", "ﬁ ligature", "Ǆ", "İstanbul", "ΑΒΓ αβγ", "Привет, мир!",
    "你好，世界", "こんにちは世界", "カタカナ", "안녕하세요", "مرحبا بالعالم", "שלום עולם",
    "नमस्ते दुनिया", "สวัสดีชาวโลก", "ሰላም", "Γειά σου", "Բարեւ", "გამარჯობა", "ᚠᚢᚦ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "𝟙𝟚𝟛", "𠀀𠀁", "Zalgo: Z̷̢a̶l̸g̵o̴", "ทดสอบ\u0e31\u0e49", "ﷺ", "Ꙩ", "ᐊᐃ",
]

WORDS = {
    "en": "the quick brown fox jumps over lazy dog hello world model token language "
          "inference kernel matrix vector attention cache python rust build test".split(),
    "fr": "bonjour le monde été naïve café garçon où déjà élève".split(),
    "de": "Straße Größe Übung schön Mädchen Fußball".split(),
    "ru": "привет мир модель язык данные быстро".split(),
    "el": "γειά κόσμος λόγος αλφάβητο".split(),
    "zh": "你好 世界 模型 语言 数据 中文 测试".split(),
    "ja": "こんにちは 世界 モデル 言語 テスト 東京".split(),
    "ko": "안녕하세요 세계 모델 언어 데이터".split(),
    "ar": "مرحبا العالم نموذج لغة بيانات".split(),
    "he": "שלום עולם מודל שפה".split(),
    "hi": "नमस्ते दुनिया मॉडल भाषा".split(),
    "th": "สวัสดี โลก ภาษา".split(),
    "vi": "xin chào thế giới tiếng Việt".split(),
}
EMOJI = ["😀", "😂", "🥲", "👍", "👍🏻", "👍🏿", "👋🏽", "👨‍💻", "👩‍❤️‍👨", "👨‍👩‍👧", "🏳️‍⚧️",
         "🇯🇵", "🇺🇸", "❤️‍🔥", "✨", "🔥", "🚀", "🎉", "☃️", "⚡"]
PUNCT = list(".,;:!?-()[]{}<>\"'`/\\|@#$%^&*_+=~…–—«»„“”‘’¿¡·•")
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n  ", "\u00a0", "\u3000", "    "]
CODE = ["def main():", "return 0;", "int x = 42;", "std::vector<int> v;", "x += 1", "a[i][j]",
        "#include <stdio.h>", "printf(\"%d\\n\", n);", "let s = String::new();", "SELECT * FROM t;",
        "</div>", "<p class=\"x\">", "\"\"\"docstring\"\"\"", "// comment", "/* block */", "0xFF",
        "i++", "x->y", "a::b", "fn(x) -> u32", "lambda x: x**2", "$HOME", "`code`", "**bold**"]
CONTRACTIONS = ["don't", "I'll", "I'LL", "you're", "He's", "WE'VE", "it'd", "can't", "I'm",
                "'s", "'T", "'Re", "o'clock"]
SPECIAL_TEXT = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\n",
                "<|im_start|>system\n", "<repo_name>", "<file_sep>"]


def random_number(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randrange(10))
    if kind == 1:
        return str(rng.randrange(10 ** rng.randrange(2, 20)))
    if kind == 2:
        return f"{rng.uniform(-1000, 1000):.{rng.randrange(1, 6)}f}"
    if kind == 3:
        return f"{rng.randrange(1, 1000):,}"
    return "".join(rng.choice("0123456789") for _ in range(rng.randrange(4, 30)))


def random_fragment(rng):
    kind = rng.choices(["word", "emoji", "punct", "space", "number", "code", "contraction",
                        "special", "rare"], weights=[40, 8, 10, 12, 10, 6, 5, 3, 3])[0]
    if kind == "word":
        lang = rng.choice(list(WORDS))
        w = rng.choice(WORDS[lang])
        r = rng.random()
        return w.upper() if r < 0.1 else w.capitalize() if r < 0.25 else w
    if kind == "emoji":
        return rng.choice(EMOJI)
    if kind == "punct":
        return "".join(rng.choice(PUNCT) for _ in range(rng.randrange(1, 4)))
    if kind == "space":
        return rng.choice(SPACES)
    if kind == "number":
        return random_number(rng)
    if kind == "code":
        return rng.choice(CODE)
    if kind == "contraction":
        return rng.choice(CONTRACTIONS)
    if kind == "special":
        return rng.choice(SPECIAL_TEXT)
    # rare: any assigned BMP / astral character, combining marks included
    while True:
        cp = rng.choice([rng.randrange(0x80, 0x3000), rng.randrange(0x3000, 0xFFF0),
                         rng.randrange(0x10000, 0x20000)])
        if not 0xD800 <= cp < 0xE000:
            return chr(cp)


def random_string(rng):
    n = rng.randrange(1, 12)
    parts = []
    for _ in range(n):
        parts.append(random_fragment(rng))
        if rng.random() < 0.6:
            parts.append(" ")
    return "".join(parts)


def make_corpus(n_random=850, seed=1234):
    rng = random.Random(seed)
    return EDGE_CASES + [random_string(rng) for _ in range(n_random)]


def training_text(seed=99, n_lines=6000):
    rng = random.Random(seed)
    return [random_string(rng) for _ in range(n_lines)]

# ------------------------------------------------------------------------------------------
# Tokenizers


def gguf_tokenizer_fields(path):
    import gguf
    r = gguf.GGUFReader(path)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def scalar(key):
        f = r.fields[key]
        return f.parts[f.data[0]].tolist()[0]

    return {
        "tokens": strings("tokenizer.ggml.tokens"),
        "merges": strings("tokenizer.ggml.merges"),
        "types": [r.fields["tokenizer.ggml.token_type"].parts[i].tolist()[0]
                  for i in r.fields["tokenizer.ggml.token_type"].data],
        "template": bytes(r.fields["tokenizer.chat_template"].parts[-1]).decode("utf-8"),
        "eos": scalar("tokenizer.ggml.eos_token_id"),
    }


def smollm2_tokenizer(fields):
    """SmolLM2's tokenizer.json, rebuilt: BPE over its vocab/merges, its 17 special added
    tokens, pre-tokenizer Sequence[Digits(individual_digits), ByteLevel], ByteLevel decoder."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    vocab = {t: i for i, t in enumerate(fields["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in fields["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    specials = [t for t, ty in zip(fields["tokens"], fields["types"]) if ty == 3]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def train_spm(lines, workdir, vocab_size=800):
    import sentencepiece as spm
    text_path = os.path.join(workdir, "train.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line.replace("\n", " ").replace("\r", " ") + "\n")
    prefix = os.path.join(workdir, "spm")
    spm.SentencePieceTrainer.train(
        input=text_path, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, character_coverage=0.995, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2,
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

TINYLLAMA_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "  Tell me a joke.  "}, {"role": "assistant", "content": "Why did the GPU cross the road?\n"},
     {"role": "user", "content": "Why?"}],
    [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi\nthere"},
     {"role": "assistant", "content": " Bonjour ! "}, {"role": "user", "content": "Ça va ? 👋"}],
]


def chat_fixtures(smollm_template):
    from transformers.utils.chat_template_utils import render_jinja_template
    templates = [
        ("smollm2", smollm_template, "<|im_start|>", "<|im_end|>"),
        ("chatml", CHATML_TEMPLATE, "<s>", "</s>"),
        ("llama2", LLAMA2_TEMPLATE, "<s>", "</s>"),
        ("llama3", LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>"),
        ("tinyllama", TINYLLAMA_TEMPLATE, "<s>", "</s>"),
    ]
    out = []
    for name, tmpl, bos, eos in templates:
        cases = []
        for conv in CONVERSATIONS:
            for gen in (True, False):
                rendered, _ = render_jinja_template([conv], chat_template=tmpl, add_generation_prompt=gen,
                                                    bos_token=bos, eos_token=eos)
                cases.append({"messages": conv, "add_generation_prompt": gen, "expected": rendered[0]})
        out.append({"name": name, "template": tmpl, "bos": bos, "eos": eos, "cases": cases})
    return out


def train_small_bpe(lines):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer)
    return tok


def spm_as_tokenizer_json(sp, legacy=False):
    """A tokenizer.json for a SentencePiece BPE model, in the layout of current transformers
    conversions (Metaspace pre-tokenizer, prepend_scheme "first") or, with legacy=True, of
    Llama-2 / TinyLlama's (normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer). Merges are extracted
    as transformers' SentencePieceExtractor does (it needs protobuf, absent here): every split
    of a piece into two pieces, ordered by the piece's score, then by the halves' ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, pid in vocab.items():
        local = [(piece[:k], piece[k:], sp.get_score(pid)) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges = [(a, b) for a, b, _ in sorted(merges, key=lambda m: m[2], reverse=True)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    if legacy:
        from tokenizers import normalizers
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                               normalizers.Replace(" ", "\u2581")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                                     split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<unk>", "<s>", "</s>")])
    return tok


def train_llama3_style(lines):
    """Byte-level BPE with Llama-3's pre-tokenizer and ignore_merges=True."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    out = Tokenizer(models.BPE(vocab=model["vocab"], merges=merges, ignore_merges=True))
    out.pre_tokenizer = pre
    out.decoder = decoders.ByteLevel()
    from tokenizers import AddedToken
    out.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>")])
    return out, model["vocab"], merges


def write_bpe_gguf(path, vocab, merges, specials, pre, template):
    import gguf
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges([f"{a} {b}" for a, b in merges])
    w.add_bos_token_id(tokens.index(specials[0]))
    w.add_eos_token_id(tokens.index(specials[2]))
    w.add_add_bos_token(True)
    w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def splits(pre, s):
    """Byte lengths of the pieces a `tokenizers` pre-tokenizer cuts s into."""
    return [len(p.encode("utf-8")) for p, _ in pre.pre_tokenize_str(s)]


def dump(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.path.join(HERE, "..", ".cache", "models",
                                                   "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    from tokenizers import Regex, pre_tokenizers
    os.makedirs(OUT, exist_ok=True)
    written = []

    corpus = make_corpus()
    for s in corpus:
        s.encode("utf-8")  # no lone surrogates
    written.append(dump("corpus.json", {"strings": corpus}))

    fields = gguf_tokenizer_fields(args.gguf)
    smol = smollm2_tokenizer(fields)
    ids = [smol.encode(s, add_special_tokens=False).ids for s in corpus]
    for s, i in zip(corpus, ids):
        assert smol.decode(i, skip_special_tokens=False) == s, repr(s)
    written.append(dump("smollm2_ids.json", {"ids": ids}))
    blob = "\n".join(corpus)  # the throughput baseline quoted in docs/tokenizer.md
    smol.encode(blob, add_special_tokens=False)
    t0 = time.perf_counter()
    for _ in range(20):
        smol.encode(blob, add_special_tokens=False)
    dt = (time.perf_counter() - t0) / 20
    print(f"tokenizers {__import__('tokenizers').__version__}: {len(blob.encode()) / dt / 1e6:.2f} MB/s "
          f"encoding the corpus joined by newlines ({len(blob.encode())} bytes, one call)")

    n_small = 300  # the first strings suffice for the secondary formats; keeps fixtures small
    with tempfile.TemporaryDirectory() as work:
        sp = train_spm(training_text(), work)
        spm_hf = spm_as_tokenizer_json(sp)
        spm_legacy = spm_as_tokenizer_json(sp, legacy=True)
    path = os.path.join(OUT, "spm_tiny_hf.json")
    spm_hf.save(path, pretty=False)
    written.append(path)
    written.append(dump("spm_tiny_hf_ids.json", {"ids": [spm_hf.encode(s, add_special_tokens=False).ids
                                                         for s in corpus[:n_small]]}))
    # The test derives the legacy layout from spm_tiny_hf.json (same vocabulary and merges).
    written.append(dump("spm_tiny_legacy_ids.json", {"ids": [spm_legacy.encode(s, add_special_tokens=False).ids
                                                             for s in corpus[:150]]}))
    llama3, l3_vocab, l3_merges = train_llama3_style(training_text(seed=5, n_lines=3000))
    path = os.path.join(OUT, "llama3_tiny.json")
    llama3.save(path, pretty=False)
    written.append(path)
    path = os.path.join(OUT, "llama3_tiny.gguf")
    write_bpe_gguf(path, l3_vocab, l3_merges, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                   "llama-bpe", LLAMA3_TEMPLATE)
    written.append(path)
    written.append(dump("llama3_tiny_ids.json", {"ids": [llama3.encode(s, add_special_tokens=False).ids
                                                         for s in corpus[:n_small]]}))
    import gguf
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    scores = [sp.get_score(i) for i in range(sp.get_piece_size())]
    types = []
    for i in range(sp.get_piece_size()):
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    path = os.path.join(OUT, "spm_tiny.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores([float(x) for x in scores])
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.add_chat_template(LLAMA2_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    written.append(path)
    spm_ids = [sp.encode(s) for s in corpus]
    for s, i in zip(corpus, spm_ids):
        assert sp.decode(i) == s, repr(s)
    written.append(dump("spm_ids.json", {"ids": spm_ids}))

    bpe = train_small_bpe(training_text(seed=7, n_lines=3000))
    path = os.path.join(OUT, "bpe_tiny.json")
    bpe.save(path, pretty=False)
    written.append(path)
    written.append(dump("bpe_tiny_config.json", {
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": False,
        "chat_template": fields["template"]}))
    written.append(dump("bpe_tiny_ids.json", {"ids": [bpe.encode(s, add_special_tokens=False).ids
                                                      for s in corpus[:n_small]]}))

    pres = {
        "gpt2": pre_tokenizers.Split(Regex(GPT2_REGEX), behavior="isolated"),
        "llama3": pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
        "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                           pre_tokenizers.Split(Regex(GPT2_REGEX), behavior="isolated")]),
        "default": pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated")
                                            for r in DEFAULT_REGEXES]),
    }
    n_split = 300
    written.append(dump("pretok_splits.json", {
        "n_strings": n_split,
        "splits": {k: [splits(p, s) for s in corpus[:n_split]] for k, p in pres.items()}}))

    written.append(dump("chat_templates.json", chat_fixtures(fields["template"])))

    total = 0
    for p in written:
        size = os.path.getsize(p)
        total += size
        print(f"{os.path.relpath(p)}: {size / 1024:.1f} KiB")
    print(f"total {total / 1024:.1f} KiB, {len(corpus)} strings")


if __name__ == "__main__":
    main()
