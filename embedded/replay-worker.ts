/**
 * Worker thread of the embedded replay: reads the files and normalises their lines in order
 * (embedded/replay-input.ts), posting store rows to the main thread with credit-based flow
 * control.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { GatewatchConfig } from '../core/config/schema.ts';
import type { RawBatch } from '../ingest/pipeline/batch.ts';
import { createNormalizer } from '../ingest/pipeline/normalize.ts';
import { columnEncoder } from './replay-columns.ts';
import {
  chunksOf,
  normalizeLines,
  unreadableBatch,
  WORKER_CREDITS,
  type WorkerMessage,
} from './replay-input.ts';

const data = workerData as {
  files: string[];
  config: GatewatchConfig;
  source: string;
  receivedAt: number;
  since?: number;
  until?: number;
  fields?: string[];
};
const port = parentPort!;
let credits = WORKER_CREDITS;
let wake: (() => void) | undefined;
port.on('message', (m) => {
  if (m === 'ack') {
    credits++;
    wake?.();
  }
});
const post = async (m: WorkerMessage) => {
  while (credits <= 0)
    await new Promise<void>((r) => {
      wake = r;
    });
  wake = undefined;
  credits--;
  const transfer: ArrayBuffer[] = [];
  if ('batch' in m) {
    transfer.push(m.batch.ts.buffer as ArrayBuffer);
    if (m.batch.columns) transfer.push(m.batch.columns.idx.buffer as ArrayBuffer);
  }
  port.postMessage(m, transfer);
};

try {
  const normalize = createNormalizer(data.config);
  const raw: RawBatch = { source: data.source, receivedAt: data.receivedAt, records: [] };
  const encode = data.fields ? columnEncoder(data.fields) : undefined;
  const opts = { since: data.since, until: data.until, keepEvents: false, encode };
  for await (const chunk of chunksOf(data.files, data)) {
    if ('unreadable' in chunk) {
      await post({ batch: { ...unreadableBatch(data.source, chunk), bytes: chunk.bytes } });
      continue;
    }
    const { lines, bytes } = chunk;
    for (let i = 0; i < lines.length; i += 2000)
      await post({ batch: { ...normalizeLines(lines.slice(i, i + 2000), normalize, raw, opts), bytes } });
  }
  const cpu = process.threadCpuUsage();
  port.postMessage({ done: true, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies WorkerMessage);
} catch (err) {
  port.postMessage({ error: (err as Error).stack ?? String(err) } satisfies WorkerMessage);
}
port.removeAllListeners('message');
