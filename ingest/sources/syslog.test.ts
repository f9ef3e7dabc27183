import { describe, expect, it } from 'vitest';
import { parseSyslog, SyslogFramer } from './syslog.ts';

describe('syslog parsing', () => {
  it('reads RFC 5424 with structured data and a BOM', () => {
    expect(
      parseSyslog(
        '<134>1 2026-11-23T10:00:00.000Z gw-1 nginx 42 ID47 [exampleSDID@32473 iut="3" eventSource="Application]x"] \uFEFF192.0.2.1 - - "GET / HTTP/1.1"',
      ),
    ).toEqual({
      facility: 16,
      severity: 6,
      timestamp: '2026-11-23T10:00:00.000Z',
      hostname: 'gw-1',
      appName: 'nginx',
      msg: '192.0.2.1 - - "GET / HTTP/1.1"',
    });
    expect(parseSyslog('<14>1 - - - - - - plain message').msg).toBe('plain message');
  });

  it('reads RFC 3164', () => {
    expect(
      parseSyslog(
        '<190>Nov 23 10:00:00 edge-01 nginx[1234]: 198.51.100.7 - - [23/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',
      ),
    ).toEqual({
      facility: 23,
      severity: 6,
      timestamp: 'Nov 23 10:00:00',
      hostname: 'edge-01',
      appName: 'nginx',
      msg: '198.51.100.7 - - [23/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',
    });
  });

  it("reads rsyslog's forwarding format (RFC 3339 timestamp, the omfwd and omrelp default)", () => {
    expect(
      parseSyslog(
        '<13>2026-11-23T21:00:00.123456+00:00 edge-02 gateway: 198.51.100.7 - - [23/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',
      ),
    ).toEqual({
      facility: 1,
      severity: 5,
      timestamp: '2026-11-23T21:00:00.123456+00:00',
      hostname: 'edge-02',
      appName: 'gateway',
      msg: '198.51.100.7 - - [23/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5',
    });
  });

  it('reads a forwarded tag without its colon (imfile Tag="gateway")', () => {
    const m = parseSyslog('<133>2026-11-23T21:34:42.688714+00:00 vm gateway 192.0.2.1 - - "GET / HTTP/1.1"');
    expect([m.hostname, m.appName, m.msg]).toEqual(['vm', 'gateway', '192.0.2.1 - - "GET / HTTP/1.1"']);
  });

  it('passes through lines without a PRI untouched', () => {
    expect(parseSyslog('just a line')).toEqual({ msg: 'just a line' });
  });
});

describe('TCP framing', () => {
  it('detects octet counting and newline framing per frame, across chunk boundaries', () => {
    const framer = new SyslogFramer();
    const a = '<14>1 - h a - - - first';
    const b = '<14>1 - h a - - - second\nwith newline inside';
    const stream = Buffer.from(
      `${Buffer.byteLength(a)} ${a}<14>third newline-framed\n${Buffer.byteLength(b)} ${b}`,
    );
    const frames = [
      ...framer.push(stream.subarray(0, 10)),
      ...framer.push(stream.subarray(10, 37)),
      ...framer.push(stream.subarray(37)),
    ];
    expect(frames).toEqual([a, '<14>third newline-framed', b]);
    expect(framer.flush()).toEqual([]);
  });

  it('counts octets, not characters, for multi-byte text', () => {
    const framer = new SyslogFramer();
    const msg = '<14>1 - h a - - - café ☕';
    expect(framer.push(Buffer.from(`${Buffer.byteLength(msg)} ${msg}`))).toEqual([msg]);
  });

  it('hands on an unterminated last frame at connection end and bounds a runaway frame', () => {
    const framer = new SyslogFramer(16);
    expect(framer.push(Buffer.from('no newline yet'))).toEqual([]);
    expect(framer.flush()).toEqual(['no newline yet']);
    expect(framer.push(Buffer.from('x'.repeat(40)))).toEqual(['x'.repeat(40)]);
  });
});
