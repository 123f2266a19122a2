"""Load generator for `inferkit serve`: N concurrent streaming chat clients for a duration
(standard library only, loopback). Each client sends one request after another; at the end of
the duration the clients still waiting disconnect (the server must cancel their requests and
free the slots). Tokens/s come from the server's own counter (/health tokens_generated) over
the duration, so partly streamed requests count too. With --server-pid, the server's resident
memory (VmRSS, /proc/PID/status) is sampled every second: after warm-up vs at the end.
Prints one JSON line.
Usage: load.py --port P [--clients 64] [--duration 60] [--max-tokens 64] [--server-pid PID]
               [--warmup 20] [--rss-csv FILE]"""
import argparse
import asyncio
import json
import time


async def one_request(port, max_tokens, i, ttfts):
    """One streaming chat completion; appends its time to first token to ttfts when the first
    token arrives (so requests cut off at the deadline count); returns completion_tokens."""
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
                    ttfts.append(ttft)
        if not done or tokens is None:
            raise RuntimeError("stream ended early")
        return tokens
    finally:
        writer.close()


async def health(port):
    """The server's /health JSON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        raw = await reader.read()
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])
    finally:
        writer.close()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def sample_rss(pid, t0, samples):
    """(seconds since start, RSS MiB) every second until cancelled."""
    while True:
        samples.append((time.monotonic() - t0, rss_mib(pid)))
        await asyncio.sleep(1.0)


def rss_at(samples, t):
    """The first sample at or after t (the last one if none)."""
    return next((r for s, r in samples if s >= t), samples[-1][1])


async def client(port, deadline, max_tokens, cid, stats):
    n = 0
    while time.monotonic() < deadline:
        try:
            stats["started"] += 1
            tokens = await asyncio.wait_for(one_request(port, max_tokens, cid * 100000 + n, stats["ttft"]), timeout=600)
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
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--warmup", type=float, default=20, help="seconds before the 'after warm-up' RSS sample")
    ap.add_argument("--rss-csv", help="write the RSS samples (seconds, MiB) here")
    a = ap.parse_args()
    stats = {"ttft": [], "started": 0, "tokens": 0, "requests": 0, "failed": 0, "errors": []}
    samples = []
    t0 = time.monotonic()
    sampler = asyncio.create_task(sample_rss(a.server_pid, t0, samples)) if a.server_pid else None
    gen0 = (await health(a.port))["tokens_generated"]
    clients = [asyncio.create_task(client(a.port, t0 + a.duration, a.max_tokens, c, stats)) for c in range(a.clients)]
    await asyncio.sleep(a.duration)
    gen1 = (await health(a.port))["tokens_generated"]
    wall = time.monotonic() - t0
    for c in clients:  # requests still running or queued: the clients go away
        c.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    for _ in range(50):  # the server notices at its next write (<= 1 s heartbeat)
        h = await health(a.port)
        if h["slots_active"] == 0 and h["queued"] == 0:
            break
        await asyncio.sleep(0.2)
    out = {"clients": a.clients, "duration_s": round(wall, 1), "requests": stats["requests"],
           "failed": stats["failed"], "tokens": gen1 - gen0, "tok_s": round((gen1 - gen0) / wall, 1),
           "ttft_p50_s": round(percentile(stats["ttft"], 0.5), 3),
           "ttft_p99_s": round(percentile(stats["ttft"], 0.99), 3), "errors": stats["errors"][:3],
           "no_first_token": stats["started"] - len(stats["ttft"]),
           "slots_active_after": h["slots_active"], "queued_after": h["queued"]}
    if sampler:
        sampler.cancel()
        samples.append((time.monotonic() - t0, rss_mib(a.server_pid)))
        out.update({"rss_start_mib": round(samples[0][1]), "rss_warm_mib": round(rss_at(samples, a.warmup)),
                    "rss_end_mib": round(rss_at(samples, a.duration)), "rss_max_mib": round(max(r for _, r in samples)),
                    "rss_after_mib": round(samples[-1][1])})
        if a.rss_csv:
            with open(a.rss_csv, "w") as f:
                f.write("seconds,rss_mib\n" + "".join(f"{t:.1f},{r:.1f}\n" for t, r in samples))
    print(json.dumps(out))


asyncio.run(main())
