/**
 * docker-compose.yml and the Dockerfile, read as a container engine would: interpolation,
 * the token the stack refuses to start without, and an image that holds every source file the
 * `gatewatch` command loads. (test/stack/compose.int.test.ts runs the stack itself.)
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: compose's ${VAR} syntax is what these strings test
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { interpolate, readComposeStack } from './compose.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const VARS = { GATEWATCH_INGEST_TOKEN: 'a-push-token-for-tests' };

describe('compose interpolation', () => {
  it('substitutes, defaults and refuses a missing required variable like compose does', () => {
    expect(interpolate('${A}-${B:-dflt}-${C-dash}-$A-$$A', { A: 'x', B: '', C: '' })).toBe('x-dflt--x-$A');
    expect(interpolate('${A:?must be set}', { A: 'y' })).toBe('y');
    expect(() => interpolate('${A:?must be set}', { A: '' })).toThrow(
      'required variable A is missing a value: must be set',
    );
  });
});

describe('docker-compose.yml', () => {
  it('will not start without an ingest token: no default secret for the push endpoints', () => {
    expect(() => readComposeStack(ROOT, {})).toThrow(/required variable GATEWATCH_INGEST_TOKEN/);
  });

  it('has no fingerprint secret default: unset, every process gets an empty value (one is created then)', () => {
    const built = readComposeStack(ROOT, VARS).services.filter((s) => s.built);
    for (const s of built) expect(s.environment.GATEWATCH_INGEST__FINGERPRINT_SECRET, s.name).toBe('');
    const own = readComposeStack(ROOT, {
      ...VARS,
      GATEWATCH_FINGERPRINT_SECRET: 'an-operator-secret-of-32-chars!!',
    });
    for (const s of own.services.filter((x) => x.built))
      expect(s.environment.GATEWATCH_INGEST__FINGERPRINT_SECRET).toBe('an-operator-secret-of-32-chars!!');
  });

  it('runs the four Gatewatch processes from the image, every one with the same sources', () => {
    const stack = readComposeStack(ROOT, VARS);
    const built = stack.services.filter((s) => s.built);
    expect(built.map((s) => [s.name, s.command.slice(0, 2)])).toEqual([
      ['api', ['serve', '--host']],
      ['ingest', ['ingest', 'sources']],
      ['ingest-worker', ['ingest', 'worker']],
      ['detect-worker', ['detect', 'worker']],
    ]);
    const sources = built.map((s) => JSON.parse(s.environment.GATEWATCH_INGEST__SOURCES!));
    for (const s of sources) expect(s).toEqual(sources[0]);
    expect(sources[0]).toEqual([
      { name: 'gateway', type: 'http', tokens: ['a-push-token-for-tests'] },
      { name: 'syslog', type: 'syslog' },
    ]);
    // the ingest service's listeners are the ports it publishes
    const ingest = built.find((s) => s.name === 'ingest')!;
    expect(ingest.containerPorts.sort()).toEqual(
      [
        ingest.environment.GATEWATCH_INGEST__HTTP_PORT,
        ingest.environment.GATEWATCH_INGEST__SYSLOG_PORT,
        ingest.environment.GATEWATCH_INGEST__RELP_PORT,
      ]
        .map(Number)
        .sort(),
    );
  });
});

/** Every repository file reachable from `entry` through relative imports and worker URLs. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    const specs = [
      ...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g),
      ...text.matchAll(/new URL\(\s*'(\.{1,2}\/[^']+)',\s*import\.meta\.url\)/g),
    ].map((m) => m[1]!);
    for (const spec of specs) {
      const target = join(dirname(file), spec);
      if (existsSync(target) && target.endsWith('.ts')) queue.push(target);
    }
  }
  return seen;
}

describe('Dockerfile', () => {
  it('copies every directory the gatewatch command loads code from, and starts that command', () => {
    const stack = readComposeStack(ROOT, VARS);
    expect(stack.entrypoint).toEqual(['node', 'cli/gatewatch.ts']);
    const files = reachable(join(ROOT, 'cli/gatewatch.ts'));
    // the walk does reach the rooms (it would pass vacuously if it stopped at the entry point)
    expect(files.size).toBeGreaterThan(100);
    const dirs = new Set([...files].map((f) => relative(ROOT, f).split('/')[0]!));
    expect([...dirs].filter((d) => !stack.copied.includes(d))).toEqual([]);
    // the built-in rules are read at run time from detections/rules, inside a copied directory
    expect(stack.copied).toContain('detections');
  });
});
