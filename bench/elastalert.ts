/**
 * ElastAlert2 beside Gatewatch (bench:detect): the closest ElastAlert2 equivalents of three
 * built-in rules — a frequency rule (waf-blocks-from-one-client), a cardinality rule
 * (api-key-many-ips) and a spike rule (server-error-spike-per-route) — run on the same
 * Elasticsearch index over the same range, with the same event filter (Gatewatch's compiled
 * query). Prints time per run and what each finds; docs/partials.md ("ElastAlert2 side by side")
 * says which is right where they disagree, from the window semantics in docs/rule-language.md.
 *
 * ElastAlert2 runs from `ELASTALERT_PYTHON`, else the virtualenv `npm run bench:detect:setup`
 * makes (bench/elastalert/setup.sh), else `python3`, through bench/elastalert/run_rule.py.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import { type EsLimits, runRuleOnElasticsearch } from '../detections/engine/elasticsearch.ts';
import { compileFilterQuery } from '../detections/engine/filter-query.ts';
import type { TimeRange } from '../detections/engine/types.ts';
import type { RuleIR } from '../parser/ir.ts';

interface Peer {
  gatewatch: string;
  type: string;
  /** The ElastAlert2 rule besides name, index, filter. */
  options: Record<string, unknown>;
  /** What differs by construction. */
  semantics: string;
}

const PEERS: Peer[] = [
  {
    gatewatch: 'waf-blocks-from-one-client',
    type: 'frequency',
    options: { query_key: 'source.ip', num_events: 10, timeframe: { minutes: 10 } },
    semantics:
      'ElastAlert2: 10 events within any 10 minutes per IP (a window ending at each event), then the count restarts; Gatewatch: ≥ 10 in an epoch-aligned tumbling 10-minute window',
  },
  {
    gatewatch: 'api-key-many-ips',
    type: 'cardinality',
    options: {
      query_key: 'gatewatch.api_key.fingerprint',
      cardinality_field: 'source.ip',
      max_cardinality: 9,
      timeframe: { minutes: 30 },
    },
    semantics:
      'ElastAlert2: more than 9 IPs within the last 30 minutes, at each new IP (no reset); Gatewatch: ≥ 10 IPs and ≥ 3 networks in 30-minute windows sliding every 10 (ElastAlert2 has no second cardinality)',
  },
  {
    gatewatch: 'server-error-spike-per-route',
    type: 'spike',
    options: {
      query_key: 'gatewatch.route',
      timeframe: { minutes: 10 },
      spike_height: 4,
      spike_type: 'up',
      threshold_cur: 20,
    },
    semantics:
      'ElastAlert2: the last 10 minutes against the 10 minutes before (≥ 4×, ≥ 20 errors), after 20 minutes of warm-up per route; Gatewatch: a 10-minute bucket against a week of buckets (z ≥ 4, ≥ 72 buckets of history, ≥ 20 errors)',
  },
];

/** ELASTALERT_PYTHON, else the virtualenv bench/elastalert/setup.sh makes, else python3. */
function python(): string | undefined {
  const cache =
    process.env.GATEWATCH_CACHE_DIR ??
    (process.getuid?.() === 0 ? '/var/tmp/gatewatch-cache' : join(homedir(), '.cache', 'gatewatch'));
  const candidates = process.env.ELASTALERT_PYTHON
    ? [process.env.ELASTALERT_PYTHON]
    : [join(cache, 'elastalert2', 'bin', 'python'), 'python3'];
  return candidates.find(
    (bin) => spawnSync(bin, ['-c', 'import elastalert.elastalert'], { encoding: 'utf8' }).status === 0,
  );
}

export async function compareElastAlert(options: {
  es: Client;
  esUrl: string;
  index: string;
  rules: RuleIR[];
  range: TimeRange;
  limits?: EsLimits;
}): Promise<void> {
  console.log('\n== ElastAlert2 beside Gatewatch (same index, same range, same event filter) ==');
  const bin = python();
  if (!bin) {
    console.log(
      'ElastAlert2 is not installed: run `npm run bench:detect:setup` (a virtualenv with elastalert2 from PyPI), or set ELASTALERT_PYTHON',
    );
    return;
  }
  const url = new URL(options.esUrl);
  const dir = mkdtempSync(join(tmpdir(), 'gw-elastalert-'));
  const span = Math.ceil((options.range.end - options.range.start) / 60_000) + 1;
  writeFileSync(
    join(dir, 'config.yaml'),
    JSON.stringify({
      rules_folder: dir,
      es_host: url.hostname,
      es_port: Number(url.port || 9200),
      writeback_index: 'gatewatch-bench-elastalert',
      // one segment over the whole range, as elastalert-test-rule does
      run_every: { minutes: span },
      buffer_time: { minutes: span },
      old_query_limit: { weeks: 520 },
      max_query_size: 10000,
      scroll_keepalive: '5m',
      alert_time_limit: { days: 2 },
      disable_rules_on_error: false,
    }),
  );
  const rows: string[] = [];
  for (const peer of PEERS) {
    const rule = options.rules.find((r) => r.id === peer.gatewatch);
    if (!rule) continue;
    const file = join(dir, `${rule.id}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        name: rule.id,
        type: peer.type,
        index: options.index,
        timestamp_field: '@timestamp',
        filter: [compileFilterQuery(rule.filter).query],
        // every match reported (the default re-alert of 1 minute would hide some)
        realert: { minutes: 0 },
        alert: ['debug'],
        ...peer.options,
      }),
    );
    const t = performance.now();
    const out = spawnSync(
      bin,
      [
        join(import.meta.dirname, 'elastalert', 'run_rule.py'),
        join(dir, 'config.yaml'),
        file,
        new Date(options.range.start).toISOString(),
        new Date(options.range.end).toISOString(),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 30, timeout: 1_800_000 },
    );
    const wall = performance.now() - t;
    const last = out.stdout.trim().split('\n').pop() ?? '';
    let ea: { ms: number; matches: { key: unknown; at: string }[] };
    try {
      ea = JSON.parse(last);
    } catch {
      console.log(
        `${peer.type} (${rule.id}): ElastAlert2 failed: ${out.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
      continue;
    }
    const viaPartials = await runRuleOnElasticsearch(options.es, options.index, rule, options.range, {
      ...options.limits,
      partials: { index: options.index.replace(/-events$/, '-partials') },
    });
    const gwKeys = new Set(viaPartials.detections.map((d) => String(Object.values(d.group)[0])));
    const eaKeys = new Set(ea.matches.map((m) => String(m.key)));
    const both = [...gwKeys].filter((k) => eaKeys.has(k)).length;
    rows.push(
      [
        `${peer.type} ↔ ${rule.id}`,
        `  ElastAlert2: ${ea.matches.length} matches for ${eaKeys.size} ${peer.options.query_key}, run_rule ${(ea.ms / 1000).toFixed(2)} s (process ${(wall / 1000).toFixed(2)} s)`,
        `  Gatewatch:   ${viaPartials.detections.length} detections for ${gwKeys.size}, ${((viaPartials.timing.esMs + viaPartials.timing.workerMs) / 1000).toFixed(2)} s${viaPartials.partials ? ' (partials)' : ''}`,
        `  keys found by both ${both}, only ElastAlert2 ${eaKeys.size - both}, only Gatewatch ${gwKeys.size - both}`,
        `  semantics: ${peer.semantics}`,
      ].join('\n'),
    );
  }
  for (const r of rows) console.log(r);
  rmSync(dir, { recursive: true, force: true });
}
