/** Rule coverage of an embedded store's events (after a replay, an eval, `rules coverage --embedded`). */
import type { GatewatchConfig } from '../core/config/schema.ts';
import { type CoverageReport, coverageReport, neededFields } from '../detections/coverage.ts';
import type { RuleIR } from '../parser/ir.ts';
import type { EmbeddedStore } from './store.ts';

export function embeddedCoverage(
  store: EmbeddedStore,
  rules: RuleIR[],
  config: GatewatchConfig,
): CoverageReport {
  return coverageReport(rules, store.fieldStats(neededFields(rules)), {
    geoipDatabase: config.ingest.geoipDatabase !== undefined,
    asnDatabase: config.ingest.asnDatabase !== undefined,
  });
}
