import { describe, expect, it } from 'vitest';
import type { Incident } from '../../core/schema/incident.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { checkFolded } from './fold-checks.ts';
import { FOLD_RULES, foldScenario, KEY } from './testing.ts';
import { combinedRisk, writeIncidents } from './writer.ts';

describe('folding detections into one incident per attack (embedded store)', () => {
  it('folds the rules that saw one key and its address, suppresses the repeat, names the key', async () => {
    const store = new EmbeddedStore(':memory:');
    const write = async () => {
      for (const { rule, incidents } of foldScenario()) {
        const ir = FOLD_RULES.find((r) => r.id === rule)!;
        await writeIncidents(store.incidentStore(), incidents, {
          ...(ir.output.suppress ? { suppression: { periodMs: ir.output.suppress.periodMs } } : {}),
          // What the event store answers: the gateway's name for the keys it saw with one.
          names: async (entities): Promise<Record<string, string>> =>
            entities.api_key?.includes(KEY) ? { [KEY]: 'acme-mobile' } : {},
        });
      }
    };
    await write();
    checkFolded(store.incidents());
    // Written again (a retried run): nothing changes.
    const before = JSON.stringify(store.incidents().map((i) => ({ ...i, updated_at: '' })));
    await write();
    expect(JSON.stringify(store.incidents().map((i) => ({ ...i, updated_at: '' })))).toBe(before);
    store.close();
  });

  it('opens the same incidents whatever order a run lists its detections in', async () => {
    const written = async (order: (incidents: Incident[]) => Incident[]) => {
      const store = new EmbeddedStore(':memory:');
      for (const { rule, incidents } of foldScenario()) {
        const ir = FOLD_RULES.find((r) => r.id === rule)!;
        await writeIncidents(store.incidentStore(), order(incidents), {
          ...(ir.output.suppress ? { suppression: { periodMs: ir.output.suppress.periodMs } } : {}),
        });
      }
      const out = store
        .incidents()
        .map((i) => `${i.rules.join('+')} ${i.entity_key} ${i.window.start} ${i.detection_ids.length}`)
        .sort();
      store.close();
      return out;
    };
    const inOrder = await written((list) => list);
    // a later sliding window listed first (as a partials run lists by group) must not become the
    // incident's window: the scenario has such repeats, so the reversed order differs if unsorted
    expect(foldScenario().some(({ incidents }) => incidents.length > 1)).toBe(true);
    expect(await written((list) => [...list].reverse())).toEqual(inOrder);
  });

  it('without a fold window every rule keeps its own incidents', async () => {
    const store = new EmbeddedStore(':memory:');
    for (const { incidents } of foldScenario())
      await writeIncidents(store.incidentStore(), incidents, { foldWindowMs: 0 });
    expect(store.incidents().length).toBeGreaterThan(2);
    store.close();
  });

  it('combines risks like independent odds, each rule once', () => {
    const r = (id: string, risk: number) => ({ rule: { id, risk } });
    expect(combinedRisk([r('a', 50)])).toBe(50);
    expect(combinedRisk([r('a', 50), r('a', 50)])).toBe(50);
    expect(combinedRisk([r('a', 50), r('b', 50)])).toBe(75);
    expect(combinedRisk([r('a', 100), r('b', 10)])).toBe(100);
  });
});
