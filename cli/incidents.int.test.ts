/**
 * `gatewatch incidents …` on the real Elasticsearch (issue 19, item 10): the CLI process reads
 * and triages through ElasticsearchIncidentRepository, as the API does.
 */
import { afterAll, beforeAll, describe, expect, it as test } from 'vitest';
import { AuditLog } from '../api/audit.ts';
import { bulkWrite, indexNames } from '../core/store/elasticsearch.ts';
import { installIncidentIndex } from '../detections/incidents/repository.ts';
import { type IntegrationContext, integrationContext } from '../test/harness/context.ts';
import { EXIT } from './errors.ts';
import { fixtureIncidents, incidentCommandCases } from './incidents-cases.ts';
import { runCli } from './test-helpers.ts';

let it: IntegrationContext;

beforeAll(async () => {
  it = integrationContext('cli-incidents');
  await installIncidentIndex(it.es, it.prefix);
  const index = indexNames(it.prefix).incidents;
  const r = await bulkWrite(
    it.es,
    fixtureIncidents().map((doc) => ({ op: 'index' as const, index, id: doc.id, doc })),
  );
  expect(r.rejected + r.retryable).toBe(0);
  await it.es.indices.refresh({ index });
});
afterAll(async () => {
  await it?.cleanup();
});

describe('incidents (Elasticsearch)', () => {
  incidentCommandCases(() => ({
    args: [],
    env: { ELASTICSEARCH_URL: it.elasticsearchUrl, GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: it.prefix },
    async auditActions(id) {
      const log = new AuditLog(it.es, it.prefix);
      await it.es.indices.refresh({ index: log.index });
      return (await log.list({ target_id: id, size: 100 })).map((e) => e.action);
    },
  }));
});

describe('incidents (Elasticsearch, before any detection ran)', () => {
  test('says there are none yet, in one line', () => {
    const r = runCli(['incidents', 'list'], {
      env: {
        ELASTICSEARCH_URL: it.elasticsearchUrl,
        GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: `${it.prefix}-empty`,
      },
    });
    expect(r.status).toBe(EXIT.failure);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `gatewatch: no incidents in Elasticsearch yet: the index ${it.prefix}-empty-incidents does not exist (the detection workers create it; check elasticsearch.indexPrefix), or add --embedded for a replay's file`,
    ]);
  });
});
