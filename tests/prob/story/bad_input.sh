#!/usr/bin/env bash
# inferkit story on bad input: a one-line error naming the problem and a non-zero exit.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
expect_error() {  # expect_error "words" args...
  local words=$1
  shift
  "$bin" story "$@" --no-render --no-cache --baseline 0 >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -qi -- "$words" "$tmp/err"; then
    echo "FAIL: story $* (exit $rc; expected one line with '$words'):"
    sed 's/^/    /' "$tmp/err" | head -5
    failures=$((failures + 1))
  fi
}
expect_error "unknown effect 'tragedy' (valid: help, hinder" --effect tragedy
expect_error "length" --effect help --length 0
expect_error "length" --effect help --length -3
expect_error "beam" --effect help --beam 0
expect_error "beam" --effect help --beam -1
expect_error "cuts" --effect help --cuts 0
expect_error "effect" --length 5
echo "$failures failures"
[ $failures -eq 0 ]
