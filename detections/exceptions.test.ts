import { describe, expect, it } from 'vitest';
import { makeIncident } from '../api/testing/fixtures.ts';
import { EmbeddedStore } from '../embedded/store.ts';
import { applyExceptions, exceptionFor, isActive, newException, type RuleException } from './exceptions.ts';
import { writeIncidents } from './incidents/writer.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');

function exception(over: Partial<RuleException> = {}): RuleException {
  return {
    ...newException(
      {
        rule_id: 'rule-a',
        entity: { type: 'ip', value: '203.0.113.9' },
        reason: 'our scanner',
        expires_at: null,
        incident_id: null,
      },
      'alice (key 1)',
      NOW - 1000,
    ),
    ...over,
  };
}

describe('exceptions', () => {
  it('are in force until lifted or expired', () => {
    expect(isActive(exception(), NOW)).toBe(true);
    expect(isActive(exception({ expires_at: new Date(NOW + 1).toISOString() }), NOW)).toBe(true);
    expect(isActive(exception({ expires_at: new Date(NOW).toISOString() }), NOW)).toBe(false);
    expect(isActive(exception({ removed_at: new Date(NOW).toISOString(), removed_by: 'bob' }), NOW)).toBe(
      false,
    );
  });

  it('cover an incident of their rule that names the entity, in any of its values', () => {
    const incident = { rule: { id: 'rule-a' }, entities: { ip: ['198.51.100.1', '203.0.113.9'] } };
    expect(exceptionFor(incident, [exception()], NOW)?.entity.value).toBe('203.0.113.9');
    expect(exceptionFor({ ...incident, rule: { id: 'rule-b' } }, [exception()], NOW)).toBeUndefined();
    expect(
      exceptionFor({ rule: { id: 'rule-a' }, entities: { user: ['203.0.113.9'] } }, [exception()], NOW),
    ).toBeUndefined();
    const asn = exception({ entity: { type: 'asn', value: '64500' } });
    expect(exceptionFor({ rule: { id: 'rule-a' }, entities: { asn: ['64500'] } }, [asn], NOW)).toBe(asn);
  });

  it('drop detections before they create, update or feed a suppressed incident', async () => {
    const store = new EmbeddedStore(':memory:');
    try {
      const writer = store.incidentStore();
      const base = makeIncident(1);
      const excepted = {
        ...base,
        id: 'inc-x',
        rule: { ...base.rule, id: 'rule-a' },
        entities: { ip: ['203.0.113.9'] },
      };
      const other = {
        ...base,
        id: 'inc-y',
        rule: { ...base.rule, id: 'rule-a' },
        entities: { ip: ['198.51.100.7'] },
      };
      const split = applyExceptions([excepted, other], [exception()], NOW);
      expect(split.kept.map((i) => i.id)).toEqual(['inc-y']);
      expect(split.excepted.map((e) => e.incident.id)).toEqual(['inc-x']);

      const first = await writeIncidents(writer, [excepted, other], {
        exceptions: { list: [exception()], now: NOW },
      });
      expect(first).toMatchObject({ created: ['inc-y'], excepted: ['inc-x'] });
      expect(store.incidents().map((i) => i.id)).toEqual(['inc-y']);
      // Without the exception (lifted) the same detection opens its incident.
      const lifted = exception({ removed_at: new Date(NOW).toISOString(), removed_by: 'bob' });
      const second = await writeIncidents(writer, [excepted], { exceptions: { list: [lifted], now: NOW } });
      expect(second).toMatchObject({ created: ['inc-x'], excepted: [] });
      // An existing incident of an excepted entity is not updated by a re-detection.
      const again = { ...excepted, event_count: excepted.event_count + 5 };
      const third = await writeIncidents(writer, [again], { exceptions: { list: [exception()], now: NOW } });
      expect(third).toMatchObject({ created: [], updated: [], excepted: ['inc-x'] });
      expect(store.incidents().find((i) => i.id === 'inc-x')?.event_count).toBe(excepted.event_count);
    } finally {
      store.close();
    }
  });
});
