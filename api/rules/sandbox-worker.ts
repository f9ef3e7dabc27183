/**
 * A worker thread of the rule sandbox (sandbox.ts): parses rule text and filters, tests rules
 * over supplied events, previews rules over Elasticsearch, one task at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import { EngineDetectionPort, testRulesOnEvents } from '../../detections/api-adapters.ts';
import { diskReaders, parseFilterExpression, parseRules } from '../../parser/index.ts';
import type { PreviewResult } from '../ports.ts';
import type { SandboxTask, SandboxWorkerData } from './sandbox.ts';

const data = workerData as SandboxWorkerData;
/** Incidents one preview answers with (the count of detections stays complete). */
const MAX_PREVIEW_INCIDENTS = 1_000;
let port: EngineDetectionPort | undefined;

async function preview(task: Extract<SandboxTask, { kind: 'preview' }>): Promise<PreviewResult> {
  if (!data.elasticsearch) throw new Error('this sandbox has no Elasticsearch to preview on');
  // The engine's own preview (detections/api-adapters.ts), run here instead of on the API's thread.
  port ??= new EngineDetectionPort({
    es: createEsClient(data.elasticsearch),
    prefix: data.elasticsearch.indexPrefix,
    maxGroups: data.maxGroups ?? 100_000,
    ...(data.foldWindowMs !== undefined ? { foldWindowMs: data.foldWindowMs } : {}),
  });
  const result = await port.preview(task.rule, task.range);
  // The answer is bounded too: every incident of a broad rule over a busy range is hundreds
  // of megabytes to copy to the API's thread and serialise.
  const incidents = result.incidents.slice(0, MAX_PREVIEW_INCIDENTS);
  const raw = result.raw_detections.slice(0, MAX_PREVIEW_INCIDENTS);
  const reasons = [
    ...(result.degraded ? [result.degraded.reason] : []),
    ...(incidents.length < result.incidents.length || raw.length < result.raw_detections.length
      ? [
          `showing the first ${incidents.length} of ${result.incidents.length} incidents and ${raw.length} of ${result.raw_detections.length} detections`,
        ]
      : []),
  ];
  return {
    incidents,
    raw_detections: raw,
    detections: result.detections,
    ...(reasons.length > 0 ? { degraded: { reason: reasons.join('; ') } } : {}),
  };
}

async function run(task: SandboxTask): Promise<unknown> {
  switch (task.kind) {
    case 'parse-rules':
      return parseRules(task.text, {
        file: task.file,
        ...(task.diskReaders ? diskReaders() : {}),
        ...(task.lists ? { lists: task.lists } : {}),
      });
    case 'parse-filter':
      return parseFilterExpression(task.text, { file: task.file });
    case 'test':
      return testRulesOnEvents(task.rules, task.events, task.now);
    case 'preview':
      return preview(task);
  }
}

parentPort!.on('message', async (m: { id: number; task: SandboxTask }) => {
  try {
    parentPort!.postMessage({ id: m.id, ok: true, value: await run(m.task) });
  } catch (err) {
    parentPort!.postMessage({
      id: m.id,
      ok: false,
      error: (err as Error).message,
      name: (err as Error).name,
    });
  }
});
