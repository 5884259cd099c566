#!/usr/bin/env node
// Times iam-simulate evaluations inside one node process, for a side-by-side
// speed comparison with keyfix.policy.simulate.decide.
//
//   node tests/oracle/bench_driver.mjs CASES.jsonl [-n N] [--warmup W]
//   ... | node tests/oracle/bench_driver.mjs - [-n N]
//
// CASES.jsonl holds keyfix simulate documents (or {"id", "doc"} envelopes), one per
// line, e.g. the corpus the differential test writes with KEYFIX_DIFF_DUMP=path.
// Each evaluation is what driver.mjs does per case: translate the keyfix document and
// run iam-simulate's runSimulation (which validates the policies every time), so
// the figure is comparable with calling keyfix's decide(doc) on the same documents.
// The N evaluations cycle through the cases. Prints one JSON object on stdout:
//   {"engine", "version", "cases", "evaluations", "warmup", "seconds",
//    "per_eval_us", "evals_per_sec", "decisions": {"Allowed": n, ...}, "errors": n}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { evaluate } from './oracle.mjs';

function usage(msg) {
  if (msg) process.stderr.write(`${msg}\n`);
  process.stderr.write('usage: bench_driver.mjs CASES.jsonl|- [-n N] [--warmup W]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let file = null;
let n = null;
let warmup = 200;
for (let i = 0; i < args.length; i += 1) {
  const a = args[i];
  if (a === '-n' || a === '--n') n = Number(args[++i]);
  else if (a === '--warmup') warmup = Number(args[++i]);
  else if (a === '-h' || a === '--help') usage();
  else if (file === null) file = a;
  else usage(`unexpected argument ${a}`);
}
if (file === null) usage('missing CASES file');
if ((n !== null && !(n > 0)) || !(warmup >= 0)) usage('N must be > 0 and W >= 0');

const text = readFileSync(file === '-' ? 0 : file, 'utf8');
const docs = text
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => {
    const parsed = JSON.parse(l);
    return parsed && 'doc' in parsed && !('request' in parsed) ? parsed.doc : parsed;
  });
if (docs.length === 0) usage('no cases');
const total = n ?? docs.length;

for (let i = 0; i < warmup; i += 1) await evaluate(docs[i % docs.length]);

const decisions = {};
let errors = 0;
const start = process.hrtime.bigint();
for (let i = 0; i < total; i += 1) {
  const r = await evaluate(docs[i % docs.length]);
  if (r.error) errors += 1;
  else decisions[r.decision] = (decisions[r.decision] || 0) + 1;
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;

const require = createRequire(import.meta.url);
let version = null;
try {
  version = require('@cloud-copilot/iam-simulate/package.json').version;
} catch {
  // the package's exports map may hide package.json; read it from disk instead
  version = JSON.parse(
    readFileSync(new URL('./node_modules/@cloud-copilot/iam-simulate/package.json', import.meta.url), 'utf8'),
  ).version;
}

process.stdout.write(
  JSON.stringify({
    engine: 'iam-simulate',
    version,
    node: process.version,
    cases: docs.length,
    evaluations: total,
    warmup,
    seconds,
    per_eval_us: (seconds * 1e6) / total,
    evals_per_sec: total / seconds,
    decisions,
    errors,
  }) + '\n',
);
