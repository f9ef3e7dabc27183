/**
 * Which files a replay reads (issue 19, item 5): any file named directly, whatever its name,
 * gzip told by content; in directories, log names with rotation suffixes; every file left out
 * reported with its reason. Progress counts the bytes read of the files' total (item 7).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import { type ReplayProgress, replay } from './replay.ts';
import { findReplayFiles, logBaseName } from './replay-files.ts';
import { EmbeddedStore } from './store.ts';

const NGINX = new URL('../samples/formats/nginx.access.log', import.meta.url).pathname;

describe('logBaseName', () => {
  it('takes rotation and compression suffixes off', () => {
    expect(logBaseName('access.log')).toBe('access.log');
    expect(logBaseName('access.log.1')).toBe('access.log');
    expect(logBaseName('access.log.2.gz')).toBe('access.log');
    expect(logBaseName('access.log-20240514')).toBe('access.log');
    expect(logBaseName('access.log-20240514.gz')).toBe('access.log');
    expect(logBaseName('access-2024-05-14.log')).toBe('access-2024-05-14.log');
    expect(logBaseName('waf.ndjson.2024-05-14T13-00.gz')).toBe('waf.ndjson');
    expect(logBaseName('messages.1')).toBe('messages');
    expect(logBaseName('messages')).toBe('messages');
  });
});

describe('findReplayFiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-files-'));
  const logs = join(dir, 'logs');
  mkdirSync(join(logs, 'old'), { recursive: true });
  const text = readFileSync(NGINX);
  writeFileSync(join(logs, 'access.log'), text);
  writeFileSync(join(logs, 'access.log.1'), text);
  writeFileSync(join(logs, 'old', 'access.log.2.gz'), gzipSync(text));
  writeFileSync(join(logs, 'access.log-20240514'), gzipSync(text)); // gzip without .gz
  writeFileSync(join(logs, 'messages'), text);
  writeFileSync(join(logs, 'labels.json'), '[]');
  writeFileSync(join(logs, 'gatewatch.yaml'), 'ingest: {}\n');
  writeFileSync(join(logs, 'notes.pdf'), '%PDF-1.7');
  writeFileSync(join(logs, 'geo.mmdb'), Buffer.from([0, 1, 2]));
  writeFileSync(join(logs, 'blob.log'), Buffer.from([0x41, 0, 0x42]));
  writeFileSync(join(logs, 'archive.log.bz2'), Buffer.from('BZh91AY&SY'));
  writeFileSync(join(logs, 'empty.log'), '');
  writeFileSync(join(logs, '.hidden.log'), text);

  it('in a directory: log names, rotated or not, gzip by content; each other file with a reason', () => {
    const found = findReplayFiles([logs]);
    const name = (p: string) => p.slice(logs.length + 1);
    expect(found.files.map((f) => [name(f.path), f.gzip])).toEqual([
      ['access.log', false],
      ['access.log-20240514', true],
      ['access.log.1', false],
      ['messages', false],
      ['old/access.log.2.gz', true],
    ]);
    expect(Object.fromEntries(found.skipped.map((s) => [name(s.path), s.reason]))).toEqual({
      '.hidden.log': 'hidden',
      'archive.log.bz2': 'compressed with bzip2, which replay does not read: decompress it first',
      'blob.log': 'binary, not a text log',
      'empty.log': 'empty',
      'gatewatch.yaml': 'configuration, not a log',
      'geo.mmdb': 'GeoIP/ASN database, not a log',
      'labels.json': 'scenario labels, not a log',
      'notes.pdf': expect.stringMatching(/^not a log file name .*: name the file to replay it$/),
    });
    expect(found.missing).toEqual([]);
  });

  it('named directly: taken whatever the name, refused only for what it holds', () => {
    const found = findReplayFiles([
      join(logs, 'access.log.1'),
      join(logs, 'messages'),
      join(logs, 'notes.pdf'),
      join(logs, 'archive.log.bz2'),
      join(logs, 'nope.log'),
    ]);
    expect(found.files.map((f) => f.path)).toEqual([
      join(logs, 'access.log.1'),
      join(logs, 'messages'),
      join(logs, 'notes.pdf'),
    ]);
    expect(found.skipped).toEqual([
      {
        path: join(logs, 'archive.log.bz2'),
        reason: 'compressed with bzip2, which replay does not read: decompress it first',
      },
    ]);
    expect(found.missing).toEqual([join(logs, 'nope.log')]);
  });

  it('replays rotated and extensionless files: every line read, gzip without .gz included', async () => {
    const files = findReplayFiles([logs]).files.map((f) => f.path);
    const store = new EmbeddedStore(':memory:');
    try {
      const result = await replay(files, { config: loadConfig({ env: {} }), store, rules: [] });
      const lines = text.toString('utf8').split('\n').filter(Boolean).length;
      expect(result.records).toBe(lines * 5);
    } finally {
      store.close();
    }
  });

  it('progress counts bytes read of the total, compressed files by their compressed size', async () => {
    const big = join(dir, 'big');
    mkdirSync(big);
    // enough lines that the reader reports several times
    const many = Buffer.concat(Array.from({ length: 4000 }, () => text));
    writeFileSync(join(big, 'a.log'), many);
    writeFileSync(join(big, 'b.log.gz'), gzipSync(many));
    copyFileSync(NGINX, join(big, 'c.log'));
    const files = findReplayFiles([big]).files.map((f) => f.path);
    const total = files.reduce((sum, f) => sum + statSync(f).size, 0);
    const seen: ReplayProgress[] = [];
    const store = new EmbeddedStore(':memory:');
    try {
      await replay(files, {
        config: loadConfig({ env: {} }),
        store,
        rules: [],
        onProgress: (p) => seen.push({ ...p }),
      });
    } finally {
      store.close();
    }
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.every((p) => p.totalBytes === total)).toBe(true);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.bytes).toBeGreaterThanOrEqual(seen[i - 1]!.bytes);
    expect(seen.some((p) => p.bytes > 0 && p.bytes < total)).toBe(true);
    expect(seen.at(-1)!.bytes).toBe(total);
  });
});
