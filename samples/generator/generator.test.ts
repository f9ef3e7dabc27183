import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { createNormalizer } from '../../ingest/pipeline/normalize.ts';
import { loadRuleFiles } from '../../parser/index.ts';
import type { RuleIR, ThresholdRule } from '../../parser/ir.ts';
import { ATTACK_IDS, generateScenario, SCENARIO_FINGERPRINT_SECRET, writeScenario } from './index.ts';
import { matchIncidents } from './labels.ts';
import { evaluateThreshold, getField } from './quick-eval.ts';
import type { Scenario } from './types.ts';

const HOUR = 3_600_000;
const START = '2024-05-14T13:00:00Z';

function parseAll(s: Scenario, dir: string): { events: GatewatchEvent[]; dead: string[] } {
  writeScenario(dir, s);
  const config = loadConfig({
    env: {},
    overrides: {
      ingest: {
        geoipDatabase: join(dir, 'geoip-city.mmdb'),
        asnDatabase: join(dir, 'geoip-asn.mmdb'),
        // the scenarios' own key: labels carry fingerprints made with it
        fingerprintSecret: SCENARIO_FINGERPRINT_SECRET,
      },
    },
  });
  const normalize = createNormalizer(config);
  const events: GatewatchEvent[] = [];
  const dead: string[] = [];
  for (const l of s.lines) {
    const r = normalize(l.line, { source: 'replay', receivedAt: Date.now(), records: [] });
    if (!r.ok) dead.push(`${r.reason}: ${l.line.slice(0, 120)}`);
    else {
      for (const f of r.failures) dead.push(f.reason);
      events.push(...r.events);
    }
  }
  return { events, dead };
}

let rules: RuleIR[];
let full: Scenario;
let fullEvents: GatewatchEvent[];
let benignEvents: GatewatchEvent[];
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'gw-scenario-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  rules = (await loadRuleFiles(['detections/rules'])).rules;
  full = generateScenario({ seed: 7, start: START, durationMs: 2 * HOUR, eventsPerMinute: 20 });
  const p = parseAll(full, tmp());
  expect(p.dead).toEqual([]);
  fullEvents = p.events;
  const benign = generateScenario({
    seed: 7,
    start: START,
    durationMs: 2 * HOUR,
    eventsPerMinute: 20,
    attacks: [],
  });
  const b = parseAll(benign, tmp());
  expect(b.dead).toEqual([]);
  benignEvents = b.events;
  return () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
});

describe('scenario generator', () => {
  it('is deterministic: same seed, byte-identical files', () => {
    const opts = { seed: 99, start: START, durationMs: HOUR, eventsPerMinute: 8 };
    const a = tmp();
    const b = tmp();
    const files = writeScenario(a, generateScenario(opts));
    writeScenario(b, generateScenario(opts));
    // gatewatch.yaml names its own directory; everything else must match byte for byte.
    for (const f of files.filter((x) => x !== 'gatewatch.yaml'))
      expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f).toBe(true);
    const other = generateScenario({ ...opts, seed: 100 });
    expect(other.lines.map((l) => l.line)).not.toEqual(generateScenario(opts).lines.map((l) => l.line));
  });

  it('injects one labelled attack per built-in rule, all lines parse with no dead letters', () => {
    const covered = new Set(full.labels.filter((l) => l.kind === 'attack').flatMap((l) => l.rules));
    for (const r of rules) expect(covered.has(r.id), r.id).toBe(true);
    expect(
      full.labels
        .filter((l) => l.kind === 'attack')
        .map((l) => l.id)
        .sort(),
    ).toEqual([...ATTACK_IDS].sort());
    expect(fullEvents.length).toBe(full.lines.length);
    const formats = new Set(fullEvents.map((e) => e.event?.dataset));
    expect([...formats].sort()).toEqual(['aws.alb', 'aws.waf', 'kong.http_log']);
  });

  it("every label's entity appears in the parsed events with the fields its rules group by", () => {
    for (const label of full.labels.filter((l) => l.kind === 'attack')) {
      const evs = fullEvents.filter(
        (e) => String(getField(e as never, label.entity.field)) === label.entity.value,
      );
      expect(evs.length, label.id).toBeGreaterThan(0);
      for (const id of label.rules) {
        const rule = rules.find((r) => r.id === id)!;
        const fields =
          rule.kind === 'threshold'
            ? rule.threshold.groupBy
            : rule.kind === 'sequence'
              ? rule.sequence.by
              : rule.kind === 'first_seen'
                ? [...rule.firstSeen.groupBy, ...rule.firstSeen.fields]
                : rule.kind === 'baseline'
                  ? rule.baseline.groupBy
                  : [];
        const selected = evs.filter((e) => fields.every((f) => getField(e as never, f) !== undefined));
        expect(selected.length, `${label.id} / ${id}: ${fields.join(', ')}`).toBeGreaterThan(0);
      }
    }
  });

  it('attacks cross the threshold rules; benign traffic alone stays under every one', () => {
    const thresholdRules = rules.filter((r): r is ThresholdRule => r.kind === 'threshold');
    expect(thresholdRules.length).toBeGreaterThan(8);
    for (const rule of thresholdRules) {
      const benignFirings = evaluateThreshold(rule, benignEvents as never);
      expect(
        benignFirings.map((f) => JSON.stringify(f)),
        `benign traffic fires ${rule.id}`,
      ).toEqual([]);
      const firings = evaluateThreshold(rule, fullEvents as never);
      const incidents = firings.map((f) => ({
        rule: { id: rule.id },
        group: f.group,
        window: {
          start: new Date(f.start).toISOString(),
          end: new Date(f.start + rule.threshold.window.sizeMs).toISOString(),
        },
      }));
      const score = matchIncidents(full.labels, incidents)[rule.id];
      if (!score) continue; // rules whose labels need history this evaluator does not model
      expect(score.missed, rule.id).toEqual([]);
      expect(score.fp, `${rule.id}: ${JSON.stringify(incidents.slice(0, 3))}`).toBe(0);
    }
  });

  it('account takeover victim: >= 10 failures then a success within 15 minutes; benign users never do', () => {
    const byUser = new Map<string, GatewatchEvent[]>();
    for (const e of fullEvents) {
      if (e.url?.path !== '/api/v1/login' || !e.user?.name) continue;
      const list = byUser.get(e.user.name) ?? [];
      list.push(e);
      byUser.set(e.user.name, list);
    }
    const hits: string[] = [];
    for (const [user, evs] of byUser) {
      evs.sort((a, b) => Date.parse(a['@timestamp']) - Date.parse(b['@timestamp']));
      const fails: number[] = [];
      for (const e of evs) {
        const t = Date.parse(e['@timestamp']);
        if (e.http?.response?.status_code === 401) fails.push(t);
        else if (
          e.http?.response?.status_code === 200 &&
          fails.filter((f) => t - f < 15 * 60_000).length >= 10
        )
          hits.push(user);
      }
    }
    const label = full.labels.find((l) => l.id === 'account-takeover-failures-then-success')!;
    expect(hits).toEqual([label.entity.value]);
  });
});
