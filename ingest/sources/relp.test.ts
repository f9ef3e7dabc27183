import { describe, expect, it } from 'vitest';
import { RelpFramer, relpResponse } from './relp.ts';

const frame = (txnr: number, command: string, data = '') =>
  data === '' ? `${txnr} ${command} 0\n` : `${txnr} ${command} ${Buffer.byteLength(data)} ${data}\n`;

describe('RELP framing', () => {
  it('reads open, syslog and close frames, including multi-byte data and an empty close', () => {
    const f = new RelpFramer();
    const input =
      frame(
        1,
        'open',
        'relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog',
      ) +
      frame(2, 'syslog', '<13>2026-11-23T10:00:00Z gw nginx: GET /caf\u00e9 — ok') +
      frame(3, 'close');
    const { frames, error } = f.push(Buffer.from(input));
    expect(error).toBeUndefined();
    expect(frames.map((x) => [x.txnr, x.command, x.data.toString('utf8')])).toEqual([
      [1, 'open', 'relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog'],
      [2, 'syslog', '<13>2026-11-23T10:00:00Z gw nginx: GET /caf\u00e9 — ok'],
      [3, 'close', ''],
    ]);
  });

  it('reassembles frames split at every byte boundary, and DATA may contain LF', () => {
    const input = Buffer.from(frame(7, 'syslog', 'line one\nline two') + frame(8, 'syslog', 'x'));
    for (let cut = 1; cut < input.length; cut++) {
      const f = new RelpFramer();
      const a = f.push(input.subarray(0, cut));
      const b = f.push(input.subarray(cut));
      expect(a.error ?? b.error).toBeUndefined();
      expect([...a.frames, ...b.frames].map((x) => [x.txnr, x.data.toString()])).toEqual([
        [7, 'line one\nline two'],
        [8, 'x'],
      ]);
    }
  });

  it('reports malformed headers, oversized frames and missing trailers instead of guessing', () => {
    expect(new RelpFramer().push(Buffer.from('hello world\n')).error).toMatch(/malformed RELP frame header/);
    expect(new RelpFramer().push(Buffer.from('1234567890 syslog 1 x\n')).error).toMatch(/malformed/);
    expect(new RelpFramer(10).push(Buffer.from('1 syslog 11 ')).error).toMatch(/11 bytes is too large/);
    expect(new RelpFramer().push(Buffer.from('1 syslog 3 abcX')).error).toMatch(/LF trailer/);
    // a frame before the bad one is still returned
    const r = new RelpFramer().push(Buffer.from(`${frame(1, 'syslog', 'ok')}garbage!\n`));
    expect(r.frames.map((x) => x.data.toString())).toEqual(['ok']);
    expect(r.error).toMatch(/malformed/);
    // a header cut short is not an error yet
    expect(new RelpFramer().push(Buffer.from('12 sysl')).error).toBeUndefined();
  });

  it('writes responses as librelp reads them', () => {
    expect(relpResponse(2, '200 OK').toString()).toBe('2 rsp 6 200 OK\n');
    expect(relpResponse(3, '').toString()).toBe('3 rsp 0\n');
  });
});
