import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
