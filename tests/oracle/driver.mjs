#!/usr/bin/env node
// keyfix differential-test oracle driver: one long-running process for a batch.
// stdin: one keyfix simulate document (or {"id": ..., "doc": {...}}) per line.
// stdout: one JSON line per input line, in order:
//   {"id", "decision", "error", "ignored_context_keys", "unsupported", "runs"}
// See oracle.mjs for how keyfix's input is translated for iam-simulate.
import { createInterface } from 'node:readline';
import { evaluate } from './oracle.mjs';

async function main() {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of rl) {
    lineNo += 1;
    if (!line.trim()) continue;
    let id = lineNo;
    let result;
    try {
      const parsed = JSON.parse(line);
      const isEnvelope = parsed && typeof parsed === 'object' && 'doc' in parsed && !('request' in parsed);
      if (isEnvelope && parsed.id !== undefined) id = parsed.id;
      result = await evaluate(isEnvelope ? parsed.doc : parsed);
    } catch (e) {
      result = { decision: null, error: `invalid JSON line: ${e.message}`, ignored_context_keys: [], unsupported: [], runs: 0 };
    }
    // One write per case, so an interactive client gets each answer at once.
    process.stdout.write(JSON.stringify({ id, ...result }) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`driver failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
