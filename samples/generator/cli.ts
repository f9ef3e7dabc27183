/**
 * CLI entry (wired as `gatewatch scenario generate`): generate a scenario and write it.
 */
import { generateScenario, writeScenario } from './index.ts';

export interface GenerateArgs {
  seed: number;
  hours: number;
  out: string;
  eventsPerMinute: number;
  /** Start time (ISO-8601); default: a fixed date so the output depends on the seed only. */
  start?: string;
  attacks?: string[];
  gzip?: boolean;
}

export async function generate(
  args: GenerateArgs,
): Promise<{ files: string[]; lines: number; labels: number }> {
  if (!Number.isFinite(args.hours) || args.hours <= 0) throw new Error('hours must be a positive number');
  if (!Number.isFinite(args.eventsPerMinute) || args.eventsPerMinute <= 0)
    throw new Error('eventsPerMinute must be positive');
  const scenario = generateScenario({
    seed: args.seed,
    start: args.start ?? '2024-05-14T13:00:00Z',
    durationMs: Math.round(args.hours * 3_600_000),
    eventsPerMinute: args.eventsPerMinute,
    ...(args.attacks ? { attacks: args.attacks } : {}),
  });
  const files = writeScenario(args.out, scenario, { gzip: args.gzip ?? false });
  return { files, lines: scenario.lines.length, labels: scenario.labels.length };
}
