/**
 * `gatewatch scenario generate` — seeded, labelled attack scenarios in real log formats.
 */
import type { Command } from 'commander';
import { generate } from '../../samples/generator/cli.ts';

export function register(program: Command): void {
  const scenario = program.command('scenario').description('Generate labelled attack scenarios.');
  scenario
    .command('generate')
    .description('Write benign traffic with injected, labelled attacks for every built-in rule.')
    .requiredOption('--out <dir>', 'output directory')
    .option('--seed <n>', 'PRNG seed (same seed, same bytes)', '2024')
    .option('--hours <n>', 'hours of traffic', '2')
    .option('--rate <n>', 'benign requests per minute on average', '12')
    .option('--start <time>', 'ISO-8601 start time')
    .option('--attacks <ids...>', 'only these attacks (rule ids)')
    .option('--gzip', 'gzip the log files')
    .action(
      async (opts: {
        out: string;
        seed: string;
        hours: string;
        rate: string;
        start?: string;
        attacks?: string[];
        gzip?: boolean;
      }) => {
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
      },
    );
}
