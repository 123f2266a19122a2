"""The official `openai` client against `inferkit serve`: chat, streaming, parallel requests.
Usage: openai_client.py BASE_URL (e.g. http://127.0.0.1:8080/v1). Exits non-zero on failure."""
import sys
from concurrent.futures import ThreadPoolExecutor

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0, timeout=60)
model = client.models.list().data[0].id
messages = [{"role": "user", "content": "Name three colours."}]

chat = client.chat.completions.create(model=model, messages=messages, max_tokens=20, temperature=0)
text = chat.choices[0].message.content
assert text and chat.choices[0].finish_reason in ("stop", "length"), chat
assert chat.usage.completion_tokens > 0 and chat.usage.prompt_tokens > 0, chat.usage

pieces, usage = [], None
for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=20, temperature=0,
                                            stream=True, stream_options={"include_usage": True}):
    if chunk.usage:
        usage = chunk.usage
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
assert "".join(pieces) == text, ("streamed text differs", "".join(pieces), text)
assert usage and usage.completion_tokens == chat.usage.completion_tokens, usage

done = client.completions.create(model=model, prompt="Once upon a time", max_tokens=8, temperature=0)
assert done.choices[0].text and done.usage.completion_tokens <= 8, done

def ask(i):
    r = client.chat.completions.create(model=model, max_tokens=12, temperature=0,
                                       messages=[{"role": "user", "content": f"Say the number {i}."}])
    return r.choices[0].message.content

with ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(ask, range(8)))
again = ask(3)
assert all(answers), answers
assert answers[3] == again, ("batched answer differs from the answer alone", answers[3], again)

try:
    client.chat.completions.create(model=model, messages=messages, max_tokens=0)
    raise AssertionError("max_tokens=0 was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400
print("openai client: chat, streaming, completions, 8 parallel, errors: ok")
