#!/bin/bash
# Nsight Compute's device time per kernel kind over a random-weight model's bench run whose work is
# mostly one prefill of --prefill-tokens (default llama3-8b, 2,048 tokens; the 8-token prompt and
# the one decode step are a small part), kernels serialized, beside the prefill's tokens/s in a
# plain run. Needs .devcarry (bench/cuda/pack.sh). Usage (device tool): bash bench/cuda/profile_prefill.sh [config] [tokens]
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
CFG=${1:-llama3-8b}
N=${2:-2048}
ARGS="bench --device cuda --random-weights --config $CFG --batch 1 --prompt-tokens 8 --gen-tokens 1 --prefill-tokens $N --reps 1"
$BIN $ARGS 2>&1 | grep -E "prefill" | tee "$OUTDIR/profile_prefill_${CFG}_wall.txt"
ncu --csv --page raw --metrics gpu__time_duration.sum --cache-control none --clock-control none \
  $BIN $ARGS > "$OUTDIR/ncu_prefill_$CFG.csv" 2> "$OUTDIR/ncu_prefill_$CFG.err"
python3 - "$OUTDIR/ncu_prefill_$CFG.csv" <<'PY' | tee "$OUTDIR/profile_prefill_$CFG.txt"
import collections, csv, sys
KEY = "gpu__time_duration.sum"
table = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith("\"")) if r.get(KEY)]
units = [r[KEY] for r in table if not r[KEY].replace(".", "").replace(",", "").isdigit()]
to_ns = {"nsecond": 1.0, "ns": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6}[units[0] if units else "ns"]
rows = [r for r in table if r[KEY].replace(".", "").replace(",", "").isdigit()]
total, count = collections.Counter(), collections.Counter()
for r in rows:
    name = r["Kernel Name"].split("(")[0][:80]
    total[name] += float(r[KEY].replace(",", "")) * to_ns
    count[name] += 1
all_t = sum(total.values())
print(f"whole run: {len(rows)} kernels, {all_t / 1e6:.2f} ms serialized")
for name, t in total.most_common(25):
    print(f"{t / 1e6:8.2f} ms {100 * t / all_t:5.1f}%  {count[name]:5d} x {t / count[name] / 1e3:8.1f} us  {name}")
PY
