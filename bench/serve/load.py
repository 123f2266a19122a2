"""Load generator for `inferkit serve`: N concurrent streaming chat clients for a duration
(standard library only, loopback). Each client sends one request after another; prints one
JSON line: requests, failed, generated tokens, tokens/s, time to first token p50/p99.
Usage: load.py --port P [--clients 64] [--duration 60] [--max-tokens 64]"""
import argparse
import asyncio
import json
import time


async def one_request(port, max_tokens, i):
    """One streaming chat completion; returns (ttft_s, completion_tokens)."""
    body = json.dumps({
        "messages": [{"role": "user", "content": f"Tell me a short story about the number {i}."}],
        "max_tokens": max_tokens, "temperature": 0.7, "seed": i, "ignore_eos": True, "stream": True,
        "stream_options": {"include_usage": True}}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(status.decode(errors="replace").strip())
        while (await reader.readline()) not in (b"\r\n", b""):  # headers
            pass
        buf, ttft, tokens, done = b"", None, None, False
        while not done:
            size = int((await reader.readline()).strip() or b"0", 16)  # chunked encoding
            if size == 0:
                break
            buf += await reader.readexactly(size + 2)
            buf = buf[:-2] if buf.endswith(b"\r\n") else buf
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if not event.startswith(b"data: "):
                    continue  # keep-alive comment
                data = event[6:]
                if data == b"[DONE]":
                    done = True
                    break
                j = json.loads(data)
                if j.get("usage"):
                    tokens = j["usage"]["completion_tokens"]
                if ttft is None and j["choices"] and j["choices"][0]["delta"].get("content"):
                    ttft = time.monotonic() - t0
        if not done or tokens is None:
            raise RuntimeError("stream ended early")
        return ttft if ttft is not None else time.monotonic() - t0, tokens
    finally:
        writer.close()


async def client(port, deadline, max_tokens, cid, stats):
    n = 0
    while time.monotonic() < deadline:
        try:
            ttft, tokens = await asyncio.wait_for(one_request(port, max_tokens, cid * 100000 + n), timeout=600)
            stats["ttft"].append(ttft)
            stats["tokens"] += tokens
            stats["requests"] += 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            stats["failed"] += 1
            stats["errors"].append(str(e)[:200])
        n += 1


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=64)
    a = ap.parse_args()
    stats = {"ttft": [], "tokens": 0, "requests": 0, "failed": 0, "errors": []}
    t0 = time.monotonic()
    await asyncio.gather(*(client(a.port, t0 + a.duration, a.max_tokens, c, stats) for c in range(a.clients)))
    wall = time.monotonic() - t0  # requests started before the deadline run to their end
    print(json.dumps({"clients": a.clients, "duration_s": round(wall, 1), "requests": stats["requests"],
                      "failed": stats["failed"], "tokens": stats["tokens"], "tok_s": round(stats["tokens"] / wall, 1),
                      "ttft_p50_s": round(percentile(stats["ttft"], 0.5), 3),
                      "ttft_p99_s": round(percentile(stats["ttft"], 0.99), 3), "errors": stats["errors"][:3]}))


asyncio.run(main())
