/** What the folding scenario (./testing.ts) must give on any incident store. */
import { expect } from 'vitest';
import type { Incident } from '../../core/schema/incident.ts';
import { KEY, OTHER_KEY } from './testing.ts';

export function checkFolded(incidents: Incident[]): void {
  expect(incidents).toHaveLength(2);
  const stolen = incidents.find((i) => i.entities.api_key?.includes(KEY))!;
  const other = incidents.find((i) => i.entities.api_key?.includes(OTHER_KEY))!;
  // One attack, one incident: the three rules on the key and its address, and the repeat four
  // hours later suppressed into it.
  expect(stolen.rules).toEqual(['key-in-url', 'key-many-ips', 'ip-errors']);
  expect(stolen.detections.map((d) => d.rule.id)).toEqual([
    'key-in-url',
    'key-many-ips',
    'key-many-ips',
    'ip-errors',
  ]);
  expect(stolen.occurrences).toBe(4);
  expect(stolen.severity).toBe('high');
  // 100 × (1 − 0.7 × 0.27 × 0.53): each rule's risk once.
  expect(stolen.risk).toBe(90);
  expect(stolen.entities.ip).toEqual(['198.51.100.3']);
  // The key by the name the gateway knows it by, beside its fingerprint.
  expect(stolen.entity_names[KEY]).toBe('acme-mobile');
  expect(stolen.title).toBe('Credential sent in the URL by key acme-mobile (3550ed2d)');
  // The incident's own window and figures are its first detection's, consistent with its title.
  expect(stolen.window).toEqual(stolen.detections[0]!.window);
  expect(stolen.metrics).toEqual(stolen.detections[0]!.metrics);
  expect(other.rules).toEqual(['key-many-ips']);
  expect(other.entity_names).toEqual({});
}
