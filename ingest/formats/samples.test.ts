import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clean } from '../transforms/enrich.ts';
import { normalizeLine } from '../transforms/normalize.ts';
import { getFormat } from './index.ts';
import { SAMPLES_DIR, sampleLines, testContext } from './testing/helpers.ts';
import { schemaProblems } from './testing/schema-check.ts';

const GENERIC_MAP = {
  ts: '@timestamp',
  client: '@peer_ip',
  verb: 'http.request.method',
  target: '@target',
  code: 'http.response.status_code',
  took_ms: '@duration_ms',
  agent: 'user_agent.original',
  tenant: 'labels.tenant',
};

const ids = readdirSync(SAMPLES_DIR)
  .filter((f) => f.endsWith('.log'))
  .map((f) => f.slice(0, -4));

describe('sample lines of every format', () => {
  it('has a registered format for every sample file', () => {
    for (const id of ids) expect(getFormat(id), id).toBeDefined();
  });

  for (const id of ids) {
    it(`${id}: every line normalises with the fixed format and fits the schema`, () => {
      const ctx = testContext({ format: id, ...(id === 'generic.json' ? { fieldMap: GENERIC_MAP } : {}) });
      let events = 0;
      for (const line of sampleLines(id)) {
        const r = normalizeLine(line, ctx);
        expect(r.ok, `${id}: ${line.slice(0, 120)} → ${r.ok ? '' : r.reason}`).toBe(true);
        if (!r.ok) continue;
        expect(r.failures).toEqual([]);
        for (const ev of r.events) {
          events++;
          expect(schemaProblems(ev), line.slice(0, 120)).toEqual([]);
          expect(ev.event?.dataset).toBe(id);
          expect(ev.event?.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
        }
      }
      expect(events).toBeGreaterThanOrEqual(3);
    });

    if (id !== 'generic.json') {
      it(`${id}: auto-detection picks ${id} for every line`, () => {
        const ctx = testContext();
        for (const line of sampleLines(id)) {
          const r = normalizeLine(line, ctx);
          if (r.ok && r.skipped) continue;
          expect(r.ok, line.slice(0, 120)).toBe(true);
          if (r.ok) for (const ev of r.events) expect(ev.event?.dataset, line.slice(0, 120)).toBe(id);
        }
      });
    }
  }
});

/** Variants of a sample line with one field emptied: JSON values set to "", "-", null, 0, [] or {}; text fields set to "-", "" or '""'. */
function emptied(line: string): string[] {
  const out: string[] = [];
  if (line.startsWith('{')) {
    const paths: string[][] = [];
    const walk = (v: unknown, path: string[]) => {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
        for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], [...path, k]);
      }
      if (path.length > 0) paths.push(path);
    };
    walk(JSON.parse(line), []);
    for (const path of paths) {
      for (const value of ['', '-', null, 0, [], {}]) {
        const o = JSON.parse(line) as Record<string, unknown>;
        let node = o;
        for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
        node[path.at(-1)!] = value;
        out.push(JSON.stringify(o));
      }
    }
  } else if (!line.startsWith('#')) {
    const sep = line.includes('\t') ? '\t' : ' ';
    const tokens = line.split(sep);
    for (let i = 0; i < tokens.length; i++) {
      for (const value of ['-', '', '""']) out.push(tokens.with(i, value).join(sep));
    }
  }
  return out;
}

describe('normalised events carry no empty values', () => {
  // Formats and transforms never set undefined, null, "", non-finite numbers, [] or {} (the
  // index mapping is strict and events are not cleaned afterwards): clean() finds nothing to drop.
  for (const id of ids) {
    it(`${id}: sample lines and variants with a field emptied`, () => {
      const ctx = testContext({
        format: id,
        ...(id === 'generic.json' ? { fieldMap: GENERIC_MAP } : {}),
        labels: { env: 'test' },
        tags: ['t'],
      });
      let events = 0;
      for (const line of sampleLines(id).flatMap((l) => [l, ...emptied(l)])) {
        const r = normalizeLine(line, ctx);
        if (!r.ok) continue;
        for (const ev of r.events) {
          events++;
          expect(clean(ev as unknown as Record<string, unknown>), line.slice(0, 200)).toBe(ev);
        }
      }
      expect(events).toBeGreaterThan(10);
    });
  }
});
