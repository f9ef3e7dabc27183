/**
 * The configuration a command runs with: the global `--config` file (or GATEWATCH_CONFIG) and
 * the environment.
 */
import type { Command } from 'commander';
import { loadConfig } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';

export function configOf(cmd: Command): GatewatchConfig {
  const file = cmd.optsWithGlobals().config as string | undefined;
  return loadConfig(file ? { file } : {});
}
