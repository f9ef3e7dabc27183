import { describe, expect, it } from 'vitest';
import { envelopeMessages, isEnvelope, splitConcatenatedJson } from './cloudwatch-envelope.ts';

describe('CloudWatch Logs subscription envelopes', () => {
  it('splits JSON objects written back to back, braces inside strings included', () => {
    expect(splitConcatenatedJson('{"a":"}{"}{"b":{"c":"\\"}"}}\n {"d":1}')).toEqual([
      '{"a":"}{"}',
      '{"b":{"c":"\\"}"}}',
      '{"d":1}',
    ]);
  });

  it('yields the messages of data envelopes, nothing for control messages', () => {
    const data = JSON.stringify({
      messageType: 'DATA_MESSAGE',
      logGroup: 'g',
      logEvents: [
        { id: '1', timestamp: 1, message: 'line one\n' },
        { id: '2', timestamp: 2, message: 'line two' },
      ],
    });
    const control = JSON.stringify({
      messageType: 'CONTROL_MESSAGE',
      logEvents: [
        { id: '', timestamp: 1, message: 'CWL CONTROL MESSAGE: Checking health of destination Firehose.' },
      ],
    });
    expect(isEnvelope(data)).toBe(true);
    expect(isEnvelope('{"time":"x"}')).toBe(false);
    expect(envelopeMessages(`${control}${data}${data}`)).toEqual([
      'line one',
      'line two',
      'line one',
      'line two',
    ]);
    expect(() => envelopeMessages('{"messageType":"OTHER"}')).toThrow(/OTHER/);
  });
});
