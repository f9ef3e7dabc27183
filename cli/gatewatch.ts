#!/usr/bin/env node
/**
 * The `gatewatch` command. Each area registers its own subcommands from cli/commands/.
 */
import { Command } from 'commander';
import { ConfigError } from '../core/config/load.ts';
import { register as registerDetect } from './commands/detect.ts';
import { register as registerEval } from './commands/eval.ts';
import { register as registerIngest } from './commands/ingest.ts';
import { register as registerKeys } from './commands/keys.ts';
import { register as registerReplay } from './commands/replay.ts';
import { register as registerRules } from './commands/rules.ts';
import { register as registerScenario } from './commands/scenario.ts';
import { register as registerServe } from './commands/serve.ts';
import { register as registerStatus } from './commands/status.ts';

const program = new Command('gatewatch')
  .description('API-security analytics: gateway and WAF logs in, correlated incidents out.')
  .option('-c, --config <file>', 'configuration file (YAML or JSON); also GATEWATCH_CONFIG')
  .showHelpAfterError();

registerIngest(program);
registerDetect(program);
registerReplay(program);
registerEval(program);
registerRules(program);
registerScenario(program);
registerServe(program);
registerKeys(program);
registerStatus(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}
