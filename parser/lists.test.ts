import { describe, expect, it } from 'vitest';
import { parseRules } from './index.ts';
import { memoryFs } from './test-helpers.ts';

describe('lists configured by the deployment', () => {
  const files = {
    '_common.gwr':
      'list internal_networks = file("nets.txt")\nmacro external = not source.ip cidr list internal_networks\n',
    'nets.txt': '10.0.0.0/8\n127.0.0.0/8\n',
  };
  const text = 'include "_common.gwr"\nrule r {\n  title "T"\n  severity low\n  where external\n}\n';
  const cidrs = (lists?: Record<string, string[]>) => {
    const r = parseRules(text, { file: 'r.gwr', ...memoryFs(files), ...(lists ? { lists } : {}) });
    expect(r.diagnostics).toEqual([]);
    return JSON.stringify(r.rules[0]!.filter);
  };

  it('replace a list declared in an included file, values and rule version', () => {
    const packed = cidrs();
    expect(packed).toContain('127.0.0.0/8');
    const configured = cidrs({ internal_networks: ['10.1.0.0/16'] });
    expect(configured).toContain('10.1.0.0/16');
    expect(configured).not.toContain('127.0.0.0/8');
  });

  it('leave lists they do not name alone', () => {
    expect(cidrs({ other: ['x'] })).toBe(cidrs());
  });
});
