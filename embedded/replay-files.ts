/**
 * Which files a replay reads, and why it leaves the others. A file named directly is read
 * whatever its name (`access.log.1`, `access.log.2.gz`, `messages`): the format of each line is
 * detected from its content, and gzip from the file's first bytes. In a directory (walked
 * recursively, in name order) a file is read when its name, less rotation and compression
 * suffixes (`.1`, `-20240514`, `.2024-05-14`, `.gz`), ends in a log extension or has none.
 * Every file left out is reported with its reason, never dropped silently.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ReplayFile {
  path: string;
  /** Size on disk (compressed size for gzip files): what progress counts. */
  bytes: number;
  gzip: boolean;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface ReplayInputs {
  files: ReplayFile[];
  skipped: SkippedFile[];
  /** Paths given that do not exist. */
  missing: string[];
}

/** Extensions of log files (after rotation and compression suffixes are taken off). */
export const LOG_EXTENSIONS = ['log', 'ndjson', 'jsonl', 'json', 'txt', 'csv', 'out'];

/** Compression suffixes (replay reads gzip; the others are named in its reason for leaving a file). */
const COMPRESSION = /\.(?:gz|bz2|xz|zst|lz4|zip)$/i;
/** logrotate and friends: `.1`, `-20240514`, `.20240514-1200`, `.2024-05-14`, `_2024-05-14T12-00`. */
const ROTATION =
  /(?:\.\d{1,4}|[-_.]\d{8}(?:[-_]?\d{2,6})?|[-_.]\d{4}-\d{2}-\d{2}(?:[T_-]\d{2}(?:[-:]\d{2}){0,2})?)$/;

/** The name with compression and rotation suffixes taken off (`access.log.2.gz` → `access.log`). */
export function logBaseName(name: string): string {
  let base = name;
  for (let i = 0; i < 4; i++) {
    const next = base.replace(COMPRESSION, '').replace(ROTATION, '');
    if (next === base || next.length === 0) break;
    base = next;
  }
  return base;
}

/** Files of a scenario or a log directory that are not logs, by name. */
const NOT_LOGS: [RegExp, string][] = [
  [/^labels\.json$/i, 'scenario labels, not a log'],
  [/^(readme|changelog|license|notice)(\.|$)/i, 'documentation, not a log'],
  [/^manifest(\.|$)/i, 'manifest, not a log'],
  [/\.ya?ml$/i, 'configuration, not a log'],
  [/\.mmdb$/i, 'GeoIP/ASN database, not a log'],
  [/\.gwr$/i, 'detection rules, not a log'],
  [/\.(md|rst|adoc|html?)$/i, 'documentation, not a log'],
];

/** Magic numbers of compressions replay does not read. */
const OTHER_COMPRESSION: [number[], string][] = [
  [[0x42, 0x5a, 0x68], 'bzip2'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
  [[0x50, 0x4b, 0x03, 0x04], 'zip'],
  [[0x04, 0x22, 0x4d, 0x18], 'lz4'],
];

const startsWith = (head: Buffer, magic: number[]) => magic.every((b, i) => head[i] === b);

/** What the first bytes say: gzip, plain text, or why the file cannot be replayed. */
export function sniff(path: string): { gzip: boolean } | { reason: string } {
  const head = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n === 0) return { reason: 'empty' };
  const bytes = head.subarray(0, n);
  if (startsWith(bytes, [0x1f, 0x8b])) return { gzip: true };
  for (const [magic, name] of OTHER_COMPRESSION) {
    if (startsWith(bytes, magic))
      return { reason: `compressed with ${name}, which replay does not read: decompress it first` };
  }
  if (bytes.includes(0)) return { reason: 'binary, not a text log' };
  return { gzip: false };
}

export function findReplayFiles(paths: string[]): ReplayInputs {
  const out: ReplayInputs = { files: [], skipped: [], missing: [] };
  const seen = new Set<string>();
  const take = (path: string, size: number) => {
    if (seen.has(path)) return;
    seen.add(path);
    const kind = sniff(path);
    if ('reason' in kind) out.skipped.push({ path, reason: kind.reason });
    else out.files.push({ path, bytes: size, gzip: kind.gzip });
  };
  const visitDirectory = (dir: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (entry.startsWith('.')) {
        out.skipped.push({ path, reason: 'hidden' });
        continue;
      }
      const info = statSync(path, { throwIfNoEntry: false });
      if (!info) {
        out.skipped.push({ path, reason: 'vanished or a broken link' });
        continue;
      }
      if (info.isDirectory()) {
        visitDirectory(path);
        continue;
      }
      if (!info.isFile()) {
        out.skipped.push({ path, reason: 'not a regular file' });
        continue;
      }
      const byName = NOT_LOGS.find(([pattern]) => pattern.test(entry));
      if (byName) {
        out.skipped.push({ path, reason: byName[1] });
        continue;
      }
      const base = logBaseName(entry);
      const dot = base.lastIndexOf('.');
      const extension = dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
      if (extension !== '' && !LOG_EXTENSIONS.includes(extension)) {
        out.skipped.push({
          path,
          reason: `not a log file name (.${LOG_EXTENSIONS.join(', .')}, none, rotated or gzipped): name the file to replay it`,
        });
        continue;
      }
      take(path, info.size);
    }
  };
  for (const path of paths) {
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info) out.missing.push(path);
    else if (info.isDirectory()) visitDirectory(path);
    else if (info.isFile()) take(path, info.size);
    else out.skipped.push({ path, reason: 'not a regular file' });
  }
  return out;
}
