/**
 * Poll until a condition holds, for asynchronous pipelines (queue → worker → index). Returns
 * the last value either way so the test's own assertion reports what was seen.
 *
 * A read that throws counts as "not yet" while time remains (a search through an alias can
 * meet a daily index whose shard is still starting); if the last read before the deadline
 * throws, that error is thrown.
 */
export async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs = 30_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T;
    try {
      value = await read();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((r) => setTimeout(r, intervalMs));
      continue;
    }
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
