#!/usr/bin/env node
// Evaluates one JavaScript expression per input line (stdin) and prints one result per line
// by the printing rule of docs/explain.md, the same rule as show() in src/explain/value.cpp:
//   undefined, null, true, false as words; numbers by String(x), except -0 -> "-0";
//   strings as JSON strings; arrays as [a,b] and plain objects as {"k":v} (Object.keys
//   order), elements shown by the same rule; a thrown error by its name (TypeError).
// Each line is evaluated as an expression: indirect eval of "(" + line + ")".
'use strict';
const fs = require('fs');

function show(v) {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return '[' + v.map(show).join(',') + ']';
  if (typeof v === 'object') return '{' + Object.keys(v).map(k => JSON.stringify(k) + ':' + show(v[k])).join(',') + '}';
  return '<' + typeof v + '>';  // outside the subset: never equal to our output
}

const geval = eval;
const lines = fs.readFileSync(0, 'utf8').split('\n');
if (lines.length && lines[lines.length - 1] === '') lines.pop();
const out = [];
for (const line of lines) {
  let r;
  try {
    r = show(geval('(' + line + ')'));
  } catch (e) {
    r = e && e.name ? e.name : 'Error';
  }
  out.push(r);
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
