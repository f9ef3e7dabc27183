/**
 * A folding scenario shared by the writer's tests on both stores: a stolen API key seen by
 * three rules within minutes (one attack), another key seen by one rule (another incident),
 * and the same key again hours later (a new incident).
 */
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { parseOk } from '../../parser/test-helpers.ts';
import { evaluateRule } from '../engine/evaluate.ts';
import { toIncident } from '../engine/types.ts';

export const FOLD_T0 = Date.parse('2026-03-02T10:00:00Z');
const at = (min: number) => new Date(FOLD_T0 + min * 60_000).toISOString();
export const KEY = '3550ed2dba42e543c6c602c516365331';
export const OTHER_KEY = '9b908fd21499458f4da1740e3cb7d524';

export const FOLD_RULES = parseOk(`
rule key-in-url {
  title "Key in URL"
  severity low
  risk 30
  where gatewatch.api_key.location == "query"
  incident {
    title "Credential sent in the URL by key {gatewatch.api_key.fingerprint}"
    entities api_key: gatewatch.api_key.fingerprint, ip: source.ip
  }
}
rule key-many-ips {
  title "Key from many IPs"
  severity high
  where gatewatch.api_key.fingerprint exists
  threshold {
    group by gatewatch.api_key.fingerprint
    window 30m
    metric ips = distinct_count(source.ip)
    having ips >= 5
  }
  incident {
    title "API key {gatewatch.api_key.fingerprint} used from {ips} IPs"
    entities api_key: gatewatch.api_key.fingerprint
    suppress for 6h
  }
}
rule ip-errors {
  title "Errors for an IP"
  severity medium
  where http.response.status_code >= 500
  threshold {
    group by source.ip
    window 30m
    metric errors = count()
    having errors >= 3
  }
  incident {
    title "{errors} errors for {source.ip}"
    entities ip: source.ip
  }
}
`);

function ev(n: number, min: number, over: Record<string, unknown> = {}): GatewatchEvent {
  return {
    '@timestamp': at(min),
    event: { id: `fold-${n}` },
    source: { ip: `198.51.100.${n % 8}` },
    url: { path: '/api/products' },
    http: { request: { method: 'GET' }, response: { status_code: 200 } },
    gatewatch: { api_key: { fingerprint: KEY, name: 'acme-mobile', location: 'header' } },
    ...over,
  } as GatewatchEvent;
}

/** Incidents the three rules raise, rule by rule (as a replay or the scheduler writes them). */
export function foldScenario(now = FOLD_T0 + 3 * 3_600_000): { rule: string; incidents: Incident[] }[] {
  const events: GatewatchEvent[] = [];
  // 10:00-10:12 the stolen key from 8 addresses, once in the URL from 198.51.100.3
  for (let i = 0; i < 24; i++) events.push(ev(i, i / 2));
  events.push(
    ev(100, 6, {
      gatewatch: { api_key: { fingerprint: KEY, name: 'acme-mobile', location: 'query' } },
      source: { ip: '198.51.100.3' },
    }),
  );
  // 10:05 that address also gets three 5xx (same attacker, another rule, an IP entity)
  for (let i = 0; i < 3; i++)
    events.push(
      ev(200 + i, 5 + i / 10, {
        source: { ip: '198.51.100.3' },
        http: { request: { method: 'GET' }, response: { status_code: 503 } },
      }),
    );
  // 10:20 another key, many IPs: another incident
  for (let i = 0; i < 6; i++)
    events.push(
      ev(300 + i, 20 + i / 2, {
        source: { ip: `203.0.113.${i}` },
        gatewatch: { api_key: { fingerprint: OTHER_KEY, location: 'header' } },
      }),
    );
  // 14:00 the first key again from many IPs, hours after the first incident: a new incident
  for (let i = 0; i < 6; i++) events.push(ev(400 + i, 240 + i, { source: { ip: `192.0.2.${i}` } }));
  const range = { start: FOLD_T0 - 3_600_000, end: FOLD_T0 + 6 * 3_600_000 };
  return FOLD_RULES.map((rule) => ({
    rule: rule.id,
    incidents: evaluateRule(rule, events, range).detections.map((d) => toIncident(d, rule, now)),
  }));
}
