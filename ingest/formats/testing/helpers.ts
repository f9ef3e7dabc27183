/** Test helpers: deterministic normalisation of sample lines. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewatchEvent } from '../../../core/schema/event.ts';
import {
  createNormalizeContext,
  type NormalizeContext,
  type SourceConfig,
} from '../../transforms/normalize.ts';

export const SAMPLES_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../samples/formats');

/** Non-empty lines of samples/formats/<id>.log. */
export function sampleLines(id: string): string[] {
  return readFileSync(join(SAMPLES_DIR, `${id}.log`), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

export const TEST_SECRET = 'test-fingerprint-secret';
export const RECEIVED_AT = Date.UTC(2024, 0, 5, 12, 0, 0);

/** A context with a fixed clock and fingerprint secret, no GeoIP. */
export function testContext(config: Partial<SourceConfig> = {}): NormalizeContext {
  return createNormalizeContext(
    {
      name: 'test',
      identity: { fingerprintSecret: TEST_SECRET },
      ...config,
    },
    { now: () => RECEIVED_AT },
  );
}

/** Normalise one line and return its single event (throws in tests when it is not exactly one). */
export function one(
  ctx: NormalizeContext,
  line: string,
  normalize: typeof import('../../transforms/normalize.ts').normalizeLine,
): GatewatchEvent {
  const r = normalize(line, ctx);
  if (!r.ok) throw new Error(`not ok: ${r.reason}`);
  if (r.events.length !== 1) throw new Error(`expected one event, got ${r.events.length}`);
  return r.events[0]!;
}

/** Normalise lines 0..n of a sample file in one fresh context; returns the result of line n. */
export function normalizeSample(
  id: string,
  n: number,
  normalize: typeof import('../../transforms/normalize.ts').normalizeLine,
  config: Partial<SourceConfig> = {},
): ReturnType<typeof normalize> {
  const ctx = testContext({ format: id, ...config });
  const lines = sampleLines(id);
  let r: ReturnType<typeof normalize> | undefined;
  for (let i = 0; i <= n; i++) r = normalize(lines[i]!, ctx);
  return r!;
}
