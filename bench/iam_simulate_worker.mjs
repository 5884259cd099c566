#!/usr/bin/env node
// iam-simulate's side of benchmark 1, run in a fresh node process by bench/bench.py.
//
//   node bench/iam_simulate_worker.mjs CASES.jsonl [--passes R]
//
// Each evaluation is exactly what the differential test's oracle does per case:
// tests/oracle/oracle.mjs's evaluate(doc) translates the keyfix simulate document and runs
// @cloud-copilot/iam-simulate's runSimulation on it (one run per permission boundary when a
// case has several). iam-simulate is used as an installed package only (AGPL; installed
// by `npm ci --prefix tests/oracle` into the git-ignored tests/oracle/node_modules); no
// code of it is copied here.
//
// Timed: only the evaluation loop. "cold" is the first pass over the corpus in a fresh
// process (JIT not yet warm); "warm" the median of R further passes. Memory: peak RSS
// (VmHWM of /proc/self/status), and RSS after the import and after loading the corpus.
// Each timed pass also records the process's CPU time (process.cpuUsage: all of node's
// threads, so JIT and GC helper threads count too).
// Prints one JSON object on stdout.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let file = null;
let passes = 3;
for (let i = 0; i < args.length; i += 1) {
  if (args[i] === '--passes') passes = Number(args[++i]);
  else if (file === null) file = args[i];
  else {
    process.stderr.write(`unexpected argument ${args[i]}\n`);
    process.exit(2);
  }
}
if (file === null || !(passes > 0)) {
  process.stderr.write('usage: iam_simulate_worker.mjs CASES.jsonl [--passes R]\n');
  process.exit(2);
}

const kb = (bytes) => Math.round(bytes / 1024);
// VmHWM: the peak RSS of this process image. (process.resourceUsage().maxRSS is getrusage's
// ru_maxrss, which also counts the parent's RSS at fork: Linux carries it across exec.)
function peakRssKb() {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}
const rssAtStart = kb(process.memoryUsage().rss);
let t = process.hrtime.bigint();
const { evaluate } = await import('../tests/oracle/oracle.mjs');
const importS = Number(process.hrtime.bigint() - t) / 1e9;
const rssAfterImport = kb(process.memoryUsage().rss);

const docs = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
const rssAfterLoad = kb(process.memoryUsage().rss);
const n = docs.length;

async function onePass() {
  const decisions = {};
  let runs = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  for (const doc of docs) {
    const r = await evaluate(doc);
    runs += r.runs;
    const k = r.error ? 'error' : r.decision;
    decisions[k] = (decisions[k] || 0) + 1;
  }
  const cpu = process.cpuUsage(cpuStart);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpu: (cpu.user + cpu.system) / 1e6, decisions, runs };
}

const cold = await onePass();
const warm = [];
const warmCpu = [];
for (let i = 0; i < passes; i += 1) {
  const r = await onePass();
  warm.push(r.seconds);
  warmCpu.push(r.cpu);
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const warmS = median(warm);

let version = null;
try {
  version = JSON.parse(
    readFileSync(new URL('../tests/oracle/node_modules/@cloud-copilot/iam-simulate/package.json', import.meta.url), 'utf8'),
  ).version;
} catch {
  version = null;
}
const mem = process.memoryUsage();
const errors = cold.decisions.error || 0;
process.stdout.write(
  JSON.stringify({
    engine: 'iam-simulate',
    version,
    node: process.version,
    cases: n,
    passes,
    import_s: importS,
    simulations_per_pass: cold.runs,
    cold: { seconds: cold.seconds, cases_per_s: n / cold.seconds, per_case_us: (cold.seconds * 1e6) / n, cpu_s: cold.cpu },
    warm: {
      seconds: warmS, cases_per_s: n / warmS, per_case_us: (warmS * 1e6) / n, all_passes_s: warm, cpu_s: median(warmCpu),
    },
    decisions: cold.decisions,
    errors,
    memory_kb: {
      rss_at_start: rssAtStart,
      rss_after_import: rssAfterImport,
      rss_after_loading_cases: rssAfterLoad,
      peak_rss: peakRssKb(),
      heap_used_at_end: kb(mem.heapUsed),
      rss_at_end: kb(mem.rss),
    },
  }) + '\n',
);
