/**
 * CLI start-up: `gatewatch --help` and `gatewatch rules validate <one file>` (what an editor
 * runs on save) beside bare `node -e 0`, each run several times as a process, interleaved.
 * Prints wall time (median and best) and CPU time (user + system, read from this process's
 * waited-for children in /proc/self/stat) per command, the first run apart (it fills the
 * compile cache when that is cold), and the target: under 0.3 s wall.
 *
 *   node bench/cli.ts [--runs 10] [--cli path/to/gatewatch.ts]
 *
 * `--cli` times another checkout's entry point (e.g. an older commit's, for a before/after).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const TARGET_S = 0.3;

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '10' }, cli: { type: 'string' } },
});
const runs = Number(values.runs);
const cli = resolve(values.cli ?? new URL('../cli/gatewatch.ts', import.meta.url).pathname);
const root = dirname(dirname(cli));
const ruleFile = resolve(root, 'detections/rules/api-keys.gwr');

/** CPU seconds of this process's waited-for children (utime + stime columns 16 and 17). */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is column 3 (state): columns 16 and 17 are fields[13] and fields[14]
  return (Number(fields[13]) + Number(fields[14])) / 100; // USER_HZ is 100 on Linux
}

interface Case {
  name: string;
  args: string[];
}

const cases: Case[] = [
  { name: 'node -e 0 (bare Node)', args: ['-e', '0'] },
  { name: 'gatewatch --help', args: [cli, '--help'] },
  { name: 'gatewatch rules validate <file>', args: [cli, 'rules', 'validate', ruleFile] },
];

function once(c: Case): { wall: number; cpu: number } {
  const cpu0 = childrenCpu();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, c.args, { cwd: root, encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${c.name} failed (exit ${r.status}): ${r.stderr}`);
  return { wall, cpu: childrenCpu() - cpu0 };
}

const first = cases.map(once);
const samples = cases.map(() => [] as { wall: number; cpu: number }[]);
for (let i = 0; i < runs; i++) {
  for (const [k, c] of cases.entries()) samples[k]!.push(once(c));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const f = (s: number) => `${s.toFixed(3)} s`;

console.log(`CLI start-up, ${runs} runs each after one first run (Node ${process.version}, ${cli})`);
console.log(
  `${'command'.padEnd(34)}${'first wall'.padStart(12)}${'median wall'.padStart(13)}${'best wall'.padStart(11)}${'mean CPU'.padStart(10)}`,
);
const baseline = median(samples[0]!.map((s) => s.wall));
cases.forEach((c, k) => {
  const walls = samples[k]!.map((s) => s.wall);
  const cpu = samples[k]!.reduce((a, s) => a + s.cpu, 0) / runs;
  const ceiling = k === 0 ? '' : `   target < ${TARGET_S} s: ${median(walls) < TARGET_S ? 'met' : 'NOT met'}`;
  console.log(
    `${c.name.padEnd(34)}${f(first[k]!.wall).padStart(12)}${f(median(walls)).padStart(13)}${f(Math.min(...walls)).padStart(11)}${f(cpu).padStart(10)}${ceiling}`,
  );
});
console.log(
  `median wall above bare Node: ${cases
    .slice(1)
    .map(
      (c, k) =>
        `${c.name.replace('gatewatch ', '')} +${f(median(samples[k + 1]!.map((s) => s.wall)) - baseline)}`,
    )
    .join(', ')}`,
);
