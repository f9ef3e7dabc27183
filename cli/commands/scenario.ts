/**
 * `gatewatch scenario generate` — seeded, labelled attack scenarios in real log formats.
 */
import { generate } from '../../samples/generator/cli.ts';

/** `scenario generate --out D`. */
export async function generateCommand(opts: {
  out: string;
  seed: string;
  hours: string;
  rate: string;
  start?: string;
  attacks?: string[];
  gzip?: boolean;
}): Promise<void> {
  const result = await generate({
    seed: Number(opts.seed),
    hours: Number(opts.hours),
    out: opts.out,
    eventsPerMinute: Number(opts.rate),
    ...(opts.start ? { start: opts.start } : {}),
    ...(opts.attacks ? { attacks: opts.attacks } : {}),
    ...(opts.gzip ? { gzip: true } : {}),
  });
  console.log(`wrote ${result.lines} lines and ${result.labels} labels: ${result.files.join(', ')}`);
}
