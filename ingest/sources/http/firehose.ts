/**
 * AWS Kinesis Data Firehose HTTP endpoint delivery:
 *   POST /firehose   X-Amz-Firehose-Access-Key: <token>, X-Amz-Firehose-Request-Id
 *   body {"requestId", "timestamp", "records": [{"data": base64}]}, optionally gzip-encoded.
 * Each record's data is a log line (or several), or gzip CloudWatch Logs subscription
 * envelopes whose logEvents[].message are the lines (../aws/cloudwatch-envelope.ts); a record
 * that cannot be read is dead-lettered and the delivery still answered 200. The response echoes requestId.
 * Firehose retries a delivery with the same requestId until it sees 200: a requestId already
 * accepted is answered 200 again without enqueuing anything twice.
 */
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { batchHeader } from '../../pipeline/batch.ts';
import { envelopeMessages, isEnvelope } from '../aws/cloudwatch-envelope.ts';
import { binaryReason } from '../objects.ts';
import { authenticatedRoute, HttpError, type HttpSourceContext, lines } from './server.ts';

interface FirehoseBody {
  requestId?: unknown;
  timestamp?: unknown;
  records?: unknown;
}

/**
 * Lines carried by one Firehose record: a log line (or several), or gzip CloudWatch Logs
 * subscription envelopes whose logEvents[].message are the lines (none for CONTROL_MESSAGE).
 * A record that cannot be read (gzip that does not inflate or is not envelopes, binary data)
 * is reported as unreadable, to be dead-lettered: retrying the delivery would not help, and
 * Firehose retries anything not answered 200.
 */
export function firehoseRecordLines(
  data: string,
  maxBytes: number,
): { lines: string[] } | { unreadable: string } {
  const bytes = Buffer.from(data, 'base64');
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let text: string;
    try {
      text = gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8');
    } catch (err) {
      return { unreadable: `Firehose record is gzip that does not inflate: ${(err as Error).message}` };
    }
    if (isEnvelope(text)) {
      try {
        return { lines: envelopeMessages(text) };
      } catch (err) {
        return { unreadable: `Firehose record is not a CloudWatch Logs envelope: ${(err as Error).message}` };
      }
    }
    const binary = binaryReason(Buffer.from(text.slice(0, 8192)));
    if (binary) return { unreadable: `Firehose record holds ${binary}` };
    return { lines: lines(text) };
  }
  const binary = binaryReason(bytes);
  if (binary) return { unreadable: `Firehose record holds ${binary}` };
  return { lines: lines(bytes.toString('utf8')) };
}

export function registerFirehose(app: FastifyInstance, ctx: HttpSourceContext): void {
  const authenticate = (request: FastifyRequest, reply: FastifyReply) => {
    const key = request.headers['x-amz-firehose-access-key'];
    const source = ctx.sourceForToken(typeof key === 'string' ? key : undefined);
    if (!source) {
      void reply.code(401).send({
        requestId: request.headers['x-amz-firehose-request-id'] ?? '',
        timestamp: Date.now(),
        errorMessage: 'missing or invalid X-Amz-Firehose-Access-Key',
      });
    }
    return source;
  };
  app.post('/firehose', authenticatedRoute(authenticate), async (request, reply) => {
    const headerId = request.headers['x-amz-firehose-request-id'];
    const reject = (status: number, message: string, requestId?: string) =>
      reply
        .code(status)
        .send({ requestId: requestId ?? headerId ?? '', timestamp: Date.now(), errorMessage: message });
    const source = request.ingestSource!;
    let body: FirehoseBody;
    try {
      body = JSON.parse(ctx.bodyText(request)) as FirehoseBody;
    } catch (err) {
      if (err instanceof HttpError) throw err;
      return reject(400, 'body is not JSON');
    }
    const requestId = typeof body.requestId === 'string' ? body.requestId : String(headerId ?? '');
    if (!requestId) return reject(400, 'requestId missing');
    if (!Array.isArray(body.records)) return reject(400, 'records must be an array', requestId);

    const busy = await ctx.queue(() => ctx.options.producer.pressure());
    if (busy !== undefined) {
      reply.header('retry-after', String(ctx.options.retryAfterSeconds ?? 5));
      return reject(429, busy, requestId);
    }
    const seen = ctx.options.seenRequestIds;
    if (seen && !(await ctx.queue(() => seen.claim(`${source.name}:${requestId}`)))) {
      return reply.code(200).send({ requestId, timestamp: Date.now() });
    }
    try {
      const records: string[] = [];
      const unreadable = new Map<string, string[]>();
      for (const [i, record] of (body.records as { data?: unknown }[]).entries()) {
        if (typeof record?.data !== 'string')
          return reject(400, 'every record needs base64 "data"', requestId);
        const read = firehoseRecordLines(record.data, ctx.options.maxBodyBytes);
        if ('lines' in read) records.push(...read.lines);
        else
          unreadable.set(read.unreadable, [
            ...(unreadable.get(read.unreadable) ?? []),
            `firehose request ${requestId} record ${i}`,
          ]);
      }
      await ctx.accept(source, records, `firehose:${requestId}`, request);
      // Records that cannot be read become dead letters; the delivery itself succeeds.
      for (const [reason, what] of unreadable) {
        await ctx.options.producer.enqueue(
          { ...batchHeader(source), unreadable: reason },
          what,
          `firehose:${requestId}:unreadable:${what[0]}`,
        );
      }
    } catch (err) {
      // Not accepted: forget the id so Firehose's retry is processed.
      await seen?.release(`${source.name}:${requestId}`).catch(() => undefined);
      throw err;
    }
    return reply.code(200).send({ requestId, timestamp: Date.now() });
  });
}
