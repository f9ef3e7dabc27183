/**
 * `gatewatch rules coverage` — which enabled rules can fire on the stored events, and why the
 * others cannot (detections/coverage.ts), on Elasticsearch or an embedded store (`--embedded`).
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { durationMs } from '../../core/config/load.ts';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import {
  type CoverageReport,
  coverageReport,
  elasticsearchFieldStats,
  formatCoverage,
  neededFields,
} from '../../detections/coverage.ts';
import { loadRuleSet, loadRuleSetFrom } from '../../detections/rule-set.ts';
import { SqliteRuleStore } from '../../embedded/api-stores.ts';
import { embeddedCoverage } from '../../embedded/coverage.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { configOf } from '../config.ts';
import { UserError } from '../errors.ts';

interface CoverageOptions {
  embedded?: boolean;
  db?: string;
  since?: string;
  json?: boolean;
}

/** `rules coverage`: which enabled rules can fire on the stored events. */
export async function coverage(opts: CoverageOptions, cmd: Command): Promise<void> {
  const config = configOf(cmd);
  let report: CoverageReport;
  if (opts.embedded || opts.db) {
    const path = opts.db ?? config.embedded.path;
    if (!existsSync(path))
      throw new UserError(
        `no embedded store at ${path}: replay some logs first (gatewatch replay <files> --db ${path})`,
      );
    const store = new EmbeddedStore(path);
    try {
      const set = await loadRuleSetFrom(config, new SqliteRuleStore(store));
      report = embeddedCoverage(store, set.rules, config);
    } finally {
      store.close();
    }
  } else {
    const es = createEsClient(config.elasticsearch);
    try {
      const set = await loadRuleSet(config, es);
      const enabled = set.rules.filter((r) => r.enabled);
      const from = opts.since ? Date.now() - durationMs(opts.since) : undefined;
      const stats = await elasticsearchFieldStats(
        es,
        config.elasticsearch.indexPrefix,
        neededFields(enabled),
        from !== undefined ? { from } : undefined,
      );
      report = coverageReport(enabled, stats, {
        geoipDatabase: config.ingest.geoipDatabase !== undefined,
        asnDatabase: config.ingest.asnDatabase !== undefined,
      });
    } finally {
      await es.close();
    }
  }
  if (opts.json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(
      `${report.events} events from ${report.sources.length} source(s)${report.span ? ` between ${report.span.start} and ${report.span.end}` : ''}:`,
    );
    console.log(formatCoverage(report, { all: true }));
  }
}
