/**
 * CloudWatch Logs subscription-filter payloads: `{"messageType":"DATA_MESSAGE", "logGroup",
 * "logStream", "logEvents":[{"id","timestamp","message"}]}` (gzip on the wire), or a
 * CONTROL_MESSAGE that checks the destination is reachable and carries no logs. They arrive as
 * Firehose records (the /firehose endpoint), and Firehose writes them to S3 one after another
 * with nothing between them (`{…}{…}`), so several envelopes may share one line.
 */

/** Split text holding JSON objects back to back (`{…}{…}`, whitespace allowed between). */
export function splitConcatenatedJson(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b) {
      if (depth++ === 0) start = i;
    } else if (c === 0x7d && depth > 0 && --depth === 0) {
      out.push(text.slice(start, i + 1));
    }
  }
  return out;
}

/** Whether text looks like a subscription envelope (checked before any parsing). */
export function isEnvelope(text: string): boolean {
  return /^\s*\{\s*"messageType"\s*:/.test(text);
}

/**
 * The log lines of one or more envelopes (none for CONTROL_MESSAGE); throws when the text is
 * not envelopes after all.
 */
export function envelopeMessages(text: string): string[] {
  const messages: string[] = [];
  const parts = splitConcatenatedJson(text);
  if (parts.length === 0) throw new Error('not a CloudWatch Logs subscription envelope');
  for (const part of parts) {
    const envelope = JSON.parse(part) as { messageType?: unknown; logEvents?: { message?: unknown }[] };
    if (envelope.messageType === 'CONTROL_MESSAGE') continue;
    if (envelope.messageType !== 'DATA_MESSAGE' || !Array.isArray(envelope.logEvents))
      throw new Error(`CloudWatch Logs envelope of type ${String(envelope.messageType)} without logEvents`);
    for (const e of envelope.logEvents) {
      if (typeof e?.message === 'string' && e.message.length > 0)
        messages.push(e.message.replace(/\r?\n$/, ''));
    }
  }
  return messages;
}
