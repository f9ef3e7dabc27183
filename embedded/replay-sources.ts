/**
 * What a replay reads, from its arguments: local files and directories (./replay.ts
 * replayFiles), and the pull sources' stores by URL — s3://bucket/prefix, cloudwatch://group,
 * kafka://brokers/topic, azblob://container/prefix (ingest/sources/remote-url.ts) — expanded
 * to the objects, log groups or topics they name. With --since/--until, date-partitioned
 * layouts are listed only where they can hold events in that range. Client libraries load
 * only when a URL is given.
 */
import { isRemoteInput } from '../ingest/sources/remote-url.ts';
import { replayFiles } from './replay.ts';

export async function replayInputs(
  paths: string[],
  range: { since?: number | undefined; until?: number | undefined } = {},
): Promise<string[]> {
  const inputs: string[] = [];
  for (const path of paths) {
    if (!isRemoteInput(path)) {
      inputs.push(...replayFiles([path]));
      continue;
    }
    const { expandRemoteInput } = await import('../ingest/sources/remote.ts');
    const found = await expandRemoteInput(path, range);
    // the URL without its query (which may hold a SAS token)
    if (found.length === 0) throw new Error(`nothing to read under ${path.replace(/\?.*$/, '')}`);
    inputs.push(...found);
  }
  return inputs;
}
