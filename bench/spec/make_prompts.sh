#!/bin/sh
# Builds the prompt sets for Hydra head training and the speculative-decoding benchmark from
# text available on this Debian machine: the short descriptions of the installed packages
# (/var/lib/dpkg/status) and the questions of data/qa/facts.tsv (Debian miscfiles).
# Every 10th prompt goes to the held-out set (accuracy and benchmark), the rest to training.
# Usage: bench/spec/make_prompts.sh   (writes bench/spec/prompts_train.txt, prompts_heldout.txt)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp)
awk -F': ' '/^Package: /{p=$2} /^Description: /{d=$2; print p "\t" d}' /var/lib/dpkg/status |
  LC_ALL=C sort -u | awk -F'\t' '{
    n = NR % 4
    if (n == 0) print "Explain what the software package " $1 " (" $2 ") is for, in a short paragraph."
    if (n == 1) print "Describe " $2 " in simple words."
    if (n == 2) print "What is " $1 " used for? It is described as: " $2 "."
    if (n == 3) print "Write two sentences about " $2 "."
  }' > "$tmp"
grep -v '^#' "$root/data/qa/facts.tsv" | cut -f3 | awk 'NR % 3 == 0 { print $0 " Answer, then explain briefly." }' >> "$tmp"
awk 'NR % 10 == 0' "$tmp" > "$here/prompts_heldout.txt"
awk 'NR % 10 != 0' "$tmp" > "$here/prompts_train.txt"
rm -f "$tmp"
wc -l "$here/prompts_train.txt" "$here/prompts_heldout.txt"
