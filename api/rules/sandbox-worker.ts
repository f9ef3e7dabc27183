/**
 * A worker thread of the rule sandbox (sandbox.ts): parses rule text and filters, tests rules
 * over supplied events, previews rules over Elasticsearch, one task at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Client } from '@elastic/elasticsearch';
import { createEsClient, indexNames, isIndexNotFound } from '../../core/store/elasticsearch.ts';
import { testRulesOnEvents } from '../../detections/api-adapters.ts';
import { runRuleOnElasticsearch } from '../../detections/engine/elasticsearch.ts';
import { toIncident } from '../../detections/engine/types.ts';
import { diskReaders, parseFilterExpression, parseRules } from '../../parser/index.ts';
import type { PreviewResult } from '../ports.ts';
import type { SandboxTask, SandboxWorkerData } from './sandbox.ts';

const data = workerData as SandboxWorkerData;
/** Incidents one preview answers with (the count of detections stays complete). */
const MAX_PREVIEW_INCIDENTS = 1_000;
let es: Client | undefined;

async function preview(task: Extract<SandboxTask, { kind: 'preview' }>): Promise<PreviewResult> {
  if (!data.elasticsearch) throw new Error('this sandbox has no Elasticsearch to preview on');
  es ??= createEsClient(data.elasticsearch);
  try {
    const result = await runRuleOnElasticsearch(
      es,
      indexNames(data.elasticsearch.indexPrefix).eventsAlias,
      task.rule,
      task.range,
      { maxGroups: data.maxGroups ?? 100_000 },
    );
    const now = Date.now();
    // The answer is bounded too: every incident of a broad rule over a busy range is hundreds
    // of megabytes to copy to the API's thread and serialise.
    const shown = result.detections.slice(0, MAX_PREVIEW_INCIDENTS);
    const reasons = [
      ...(result.degraded ? [result.degraded.reason] : []),
      ...(shown.length < result.detections.length
        ? [`showing the first ${shown.length} of ${result.detections.length} incidents`]
        : []),
    ];
    return {
      incidents: shown.map((d) => toIncident(d, task.rule, now)),
      detections: result.detections.length,
      ...(reasons.length > 0 ? { degraded: { reason: reasons.join('; ') } } : {}),
    };
  } catch (err) {
    // Nothing ingested yet: no events index, so nothing to find.
    if (isIndexNotFound(err)) return { incidents: [], detections: 0 };
    throw err;
  }
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
