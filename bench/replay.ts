/**
 * bench:replay — events/s of an embedded replay (parse, normalise, enrich, store, every built-in
 * rule through the in-process evaluator) of a generated scenario of ~1M events into a fresh
 * SQLite file, next to a ceiling measured in the same run: reading the same files and
 * JSON-parsing/splitting each line with no further work (one thread). CPU time is the whole
 * process (the replay normalises on a worker thread).
 *
 *   npm run bench:replay [-- --events 1000000]
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config/load.ts';
import { readLines, replay, replayFiles } from '../embedded/replay.ts';
import { EmbeddedStore } from '../embedded/store.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { generateScenario, writeScenario } from '../samples/generator/index.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' } } });
const target = Number(values.events);
const dir = join('.cache', `bench-replay-${target}`);

if (!existsSync(join(dir, 'labels.json'))) {
  const hours = 24;
  // The generator's rate is an average over a diurnal curve; attacks add a few thousand events.
  const scenario = generateScenario({
    seed: 7,
    start: '2024-05-14T00:00:00Z',
    durationMs: hours * 3_600_000,
    eventsPerMinute: Math.max(1, Math.round(target / (hours * 60))),
  });
  writeScenario(dir, scenario);
  writeFileSync(join(dir, 'bench.json'), JSON.stringify({ lines: scenario.lines.length }));
}
const files = replayFiles([dir]);
const lines = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8')).lines as number;

// Ceiling: read every line and JSON.parse it (or split it, for text formats).
let t = performance.now();
let parsed = 0;
for (const file of files) {
  for await (const line of readLines(file)) {
    if (line.startsWith('{')) JSON.parse(line);
    else line.split(' ');
    parsed++;
  }
}
const ceilingSecs = (performance.now() - t) / 1000;

const config = loadConfig({ env: {}, file: join(dir, 'gatewatch.yaml') });
const { rules } = await loadRuleFiles(['detections/rules']);
const dbPath = join('.cache', `bench-replay-${target}.sqlite`);
for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
const store = new EmbeddedStore(dbPath);
const cpu0 = process.cpuUsage();
t = performance.now();
const result = await replay(files, { config, store, rules });
store.close();
const secs = (performance.now() - t) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;

const ruleMs = result.streamMs + result.rules.reduce((a, r) => a + r.ms, 0);
console.log(
  `bench:replay — ${result.records.toLocaleString()} lines (${lines.toLocaleString()} generated), ${rules.length} rules, embedded store ${dbPath}`,
);
console.log(
  `  ceiling: read + JSON.parse/split only      ${Math.round(parsed / ceilingSecs).toLocaleString()} lines/s`,
);
console.log(
  `  replay: whole pipeline + every rule         ${Math.round(result.records / secs).toLocaleString()} events/s  (${secs.toFixed(1)} s wall, ${cpuSecs.toFixed(1)} s CPU on ${availableParallelism()} cores; rules ${(ruleMs / 1000).toFixed(1)} s)`,
);
console.log(
  `  incidents ${result.incidents.length}, dead letters ${result.deadLetters}; target ≥ 100,000 events/s`,
);
console.log(
  `  CPU by thread: main (store, rules, inventory) ${(result.cpuMs.main / 1000).toFixed(1)} s, worker (read, normalise, serialise) ${((result.cpuMs.worker ?? 0) / 1000).toFixed(1)} s`,
);
console.log(`    all rules on events as they are stored         ${result.streamMs.toFixed(0)} ms`);
for (const r of [...result.rules].sort((a, b) => b.ms - a.ms).slice(0, 5))
  console.log(`    ${`${r.id} (at the end)`.padEnd(46)} ${r.ms.toFixed(0)} ms`);
