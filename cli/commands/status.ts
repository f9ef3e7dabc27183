/**
 * `gatewatch status` — the deployment at a glance (operations/status.ts): Elasticsearch health
 * and disk, Redis memory and persistence, queues and lag per source, dead letters per hour,
 * rules late or failing, retention and the lifecycle's last pass, and what to do about each
 * warning. Exit status 1 when a warning is critical (for monitoring scripts), else 0.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchConfig } from '../../core/config/schema.ts';
import { connectRedis } from '../../core/queue/bullmq.ts';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import { loadRuleSet } from '../../detections/rule-set.ts';
import { deploymentStatus, type StatusReport } from '../../operations/status.ts';
import { gib } from '../../operations/store-health.ts';

const seconds = (s: number | null) =>
  s === null
    ? '—'
    : s < 120
      ? `${s} s`
      : s < 7200
        ? `${Math.round(s / 60)} min`
        : `${(s / 3600).toFixed(1)} h`;

/** The report as a few aligned lines, warnings last with their actions. */
export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(14)} ${text}`);
  const critical = r.warnings.filter((w) => w.level === 'critical').length;
  lines.push(
    `Gatewatch status at ${r.at}: ${r.ok ? 'all well' : `${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}${critical ? ` (${critical} critical)` : ''}`}`,
    '',
  );
  const es = r.elasticsearch;
  row(
    'Elasticsearch',
    es.reachable
      ? `cluster ${es.cluster} ${es.health}, ${es.nodes} node${es.nodes === 1 ? '' : 's'} (${es.data_nodes} data)${es.unassigned_shards ? `, ${es.unassigned_shards} shards unassigned` : ''}`
      : `unreachable: ${es.error}`,
  );
  if (es.disk.length > 0)
    row(
      '  disk',
      `${es.disk.map((d) => `${d.node} ${d.used_percent.toFixed(1)} % (${gib(d.free_bytes)} free${d.watermark !== 'none' ? `, past ${d.watermark}` : ''})`).join(' · ')}; watermarks ${es.watermarks.low} / ${es.watermarks.high} / ${es.watermarks.flood_stage}${es.watermarks.enabled ? '' : ' (not enforced)'}`,
    );
  if (es.push_back) row('  push-back', es.push_back);
  const redis = r.redis;
  row(
    'Redis',
    redis.reachable
      ? `${redis.version}, ${gib(redis.used_memory_bytes ?? 0)}${redis.maxmemory_bytes ? ` of ${gib(redis.maxmemory_bytes)}` : ' (no maxmemory)'}, ${redis.maxmemory_policy}, ${redis.aof_enabled ? `AOF on${redis.aof_last_write_ok === false ? ' (last write FAILED)' : ''}` : 'AOF off'}, last snapshot ${redis.last_snapshot_at ?? 'never'}${redis.last_snapshot_ok === false ? ' (FAILED)' : ''}`
      : `unreachable: ${redis.error}`,
  );
  const q = (s: StatusReport['queues']['ingest']) =>
    s
      ? `${s.waiting} waiting, ${s.active} active, ${s.delayed} delayed, ${s.failed} failed${s.oldest_waiting_seconds !== null ? `, oldest ${seconds(s.oldest_waiting_seconds)}` : ''}`
      : '—';
  row('Queues', `ingest: ${q(r.queues.ingest)} · detection: ${q(r.queues.detection)}`);
  for (const s of r.sources)
    row(
      `  ${s.name}`,
      `${s.type}: ${s.queued_batches} batches queued, lag ${seconds(s.lag_seconds)}, last stored ${s.last_stored_at ?? 'never'}`,
    );
  row(
    'Dead letters',
    `${r.dead_letters.last_hour} in the last hour, ${r.dead_letters.last_24h} in 24 h${r.dead_letters.per_hour.length ? ` (per hour: ${r.dead_letters.per_hour.map((h) => `${h.hour.slice(11, 16)} ${h.count}`).join(', ')})` : ''}`,
  );
  row('Rules', `${r.rules.enabled} enabled, ${r.rules.late.length} late, ${r.rules.failing.length} failing`);
  const p = r.retention.policy;
  row(
    'Retention',
    `events ${p.events} · dead letters ${p.deadLetters} · rule runs ${p.ruleRuns} · incidents ${p.incidents} · inventory ${p.inventory} · audit ${p.audit}`,
  );
  const last = r.retention.last_run;
  row(
    '  lifecycle',
    !r.retention.lifecycle.enabled
      ? 'off'
      : last
        ? `every ${r.retention.lifecycle.interval}; last pass ${last.started_at} ${last.outcome}: ${last.events.indices} events indices (${gib(last.events.primary_bytes)}, oldest day ${last.events.oldest_day ?? '—'}), ${last.deleted_indices.length} deleted, ${last.rolled_over.length} rolled over, ${last.sealed.length} sealed, ${Object.values(last.deleted_documents).reduce((a, b) => a + b, 0)} documents deleted; next due ${r.retention.next_due_at}`
        : `every ${r.retention.lifecycle.interval}; no pass yet`,
  );
  if (r.warnings.length > 0) {
    lines.push('', 'Warnings');
    for (const w of r.warnings) {
      lines.push(`  ${w.level === 'critical' ? 'CRITICAL' : 'warning '}  ${w.component}: ${w.message}`);
      lines.push(`            → ${w.action}`);
    }
  }
  return lines.join('\n');
}

/** The status of the deployment `config` points at. */
export async function statusOf(config: GatewatchConfig): Promise<StatusReport> {
  const es = createEsClient(config.elasticsearch);
  let redis: Awaited<ReturnType<typeof connectRedis>> | undefined;
  let redisError: string | undefined;
  try {
    redis = await connectRedis(config.redis.url, 'producer', 5_000);
  } catch (err) {
    redisError = (err as Error).message;
  }
  try {
    const rules = await loadRuleSet(config, es)
      .then((set) =>
        set.rules
          .filter((rule) => rule.enabled)
          .map((rule) => ({
            id: rule.id,
            intervalMs: rule.schedule.intervalMs,
            latenessMs: rule.schedule.latenessMs,
          })),
      )
      .catch(() => undefined);
    return await deploymentStatus({
      es,
      redis,
      ...(redisError ? { redisError } : {}),
      config,
      ...(rules ? { rules } : {}),
    });
  } finally {
    redis?.disconnect();
    await es.close();
  }
}

/** `gatewatch status [--json]` (commander calls it with the options and the command). */
export async function status(opts: { json?: boolean }, cmd: Command): Promise<void> {
  const file = cmd.optsWithGlobals().config as string | undefined;
  const config = loadConfig(file ? { file } : {});
  const report = await statusOf(config);
  console.log(opts.json ? JSON.stringify(report, null, 2) : formatStatus(report));
  if (report.warnings.some((w) => w.level === 'critical')) process.exitCode = 1;
}

export function register(program: Command): void {
  program
    .command('status')
    .description(
      'The deployment at a glance: Elasticsearch health and disk, Redis memory and persistence, queues and lag per source, dead letters, rules late or failing, retention — and what to do about each warning (exit 1 on a critical one).',
    )
    .option('--json', 'the report as JSON (what GET /api/v1/status answers)')
    .action(status);
}
