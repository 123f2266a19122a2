"""Per-kernel device time in an Nsight Compute CSV (`--csv --page raw --metrics gpu__time_duration.sum`)
of one repeated unit of work: the kernels between the last two launches of a marker kernel, grouped
by name; MARKER "-": every kernel of the run. Usage: ncu_between.py CSV MARKER LABEL [--with-marker]
  bench/cuda/verify.sh:           MARKER keep_rows_kernel (a verification pass lies between compactions)
  bench/cuda/profile_decode.sh:   MARKER sample_kernel --with-marker (a decode step ends with sampling)
  bench/cuda/profile_prefill.sh:  MARKER - (a run that is mostly one prefill)"""
import collections
import csv
import sys

path, marker, label = sys.argv[1:4]
with_marker = "--with-marker" in sys.argv[4:]
KEY = "gpu__time_duration.sum"
table = [r for r in csv.DictReader(l for l in open(path) if l.startswith("\"")) if r.get(KEY)]
units = [r[KEY] for r in table if not r[KEY].replace(".", "").replace(",", "").isdigit()]
to_ns = {"nsecond": 1.0, "ns": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6}[units[0] if units else "ns"]
rows = [r for r in table if r[KEY].replace(".", "").replace(",", "").isdigit()]
if marker == "-":
    unit = rows
else:
    cuts = [i for i, r in enumerate(rows) if marker in r["Kernel Name"]]
    if len(cuts) < 2:
        sys.exit(f"{len(rows)} kernels, {len(cuts)} launches of {marker}: no complete {label}")
    unit = rows[cuts[-2] + 1 : cuts[-1] + (1 if with_marker else 0)]
total = collections.Counter()
count = collections.Counter()
for r in unit:
    name = r["Kernel Name"].split("(")[0][:70]
    total[name] += float(r[KEY].replace(",", "")) * to_ns
    count[name] += 1
all_t = sum(total.values())
print(f"{label}: {sum(count.values())} kernels, {all_t / 1e3:.1f} us of serialized device time")
for name, t in total.most_common():
    print(f"{t / 1e3:9.1f} us  {count[name]:4d} x {t / count[name] / 1e3:6.2f} us  {name}")
