"""Per-kernel device time of one decode step in an Nsight Compute CSV (bench/cuda/profile_decode.sh):
the kernels between the last two sampling kernels, grouped by name, beside the step's wall time."""
import collections
import csv
import sys

KEY = "gpu__time_duration.sum"
table = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith("\"")) if r.get(KEY)]
units = [r[KEY] for r in table if not r[KEY].replace(".", "").replace(",", "").isdigit()]
to_ns = {"nsecond": 1.0, "ns": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6}[units[0] if units else "ns"]
rows = [r for r in table if r[KEY].replace(".", "").replace(",", "").isdigit()]
cuts = [i for i, r in enumerate(rows) if "sample_kernel" in r["Kernel Name"]]
if len(cuts) < 2:
    sys.exit(f"{len(rows)} kernels, {len(cuts)} sampling kernels: no complete step")
total = collections.Counter()
count = collections.Counter()
for r in rows[cuts[-2] + 1 : cuts[-1] + 1]:
    name = r["Kernel Name"].split("(")[0][:70]
    total[name] += float(r[KEY].replace(",", "")) * to_ns
    count[name] += 1
all_t = sum(total.values())
print(f"one decode step: {sum(count.values())} kernels, {all_t / 1e3:.1f} us of serialized device time")
for name, t in total.most_common():
    print(f"{t / 1e3:9.1f} us  {count[name]:4d} x {t / count[name] / 1e3:6.2f} us  {name}")
