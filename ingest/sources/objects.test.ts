import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { binaryReason, compressionReason } from './objects.ts';

describe('object content checks', () => {
  it('passes text log lines, UTF-8 and tabs included', () => {
    expect(
      binaryReason(
        Buffer.from('2026-11-23\t10:00:00\tAMS1\t1234\t203.0.113.9\tGET\td111.cloudfront.net\t/ünïcode\n'),
      ),
    ).toBeUndefined();
    expect(binaryReason(Buffer.from('{"a":"b"}\r\n{"c":"d"}\r\n'))).toBeUndefined();
  });

  it('names binary content and other compressions', () => {
    expect(binaryReason(Buffer.concat([Buffer.from('PK'), Buffer.alloc(10)]))).toMatch(/NUL bytes/);
    const noNul = Buffer.from(Array.from(randomBytes(4096), (b) => b || 1));
    expect(binaryReason(noNul)).toMatch(/control bytes, invalid UTF-8/);
    expect(compressionReason(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe(
      'zstd-compressed object: only gzip and plain text are read',
    );
    expect(compressionReason(Buffer.from('PAR1xxxx'))).toMatch(/^Parquet/);
    expect(compressionReason(Buffer.from('plain text'))).toBeUndefined();
  });
});
