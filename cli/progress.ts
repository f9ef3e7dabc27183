/**
 * Progress of a long read: bytes of the total, events per second, time left. Drawn as a bar
 * on a terminal (stderr); with `--progress` on a pipe, one line every few seconds instead.
 */
import cliProgress from 'cli-progress';

export interface ProgressState {
  bytes: number;
  /** Undefined when the total is not known beforehand (remote inputs): no share, no ETA. */
  totalBytes: number | undefined;
  events: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** "12 MB of 48 MB (25 %), 31200 events/s, ETA 0:09" after `elapsedMs`. */
export function progressText(p: ProgressState, elapsedMs: number): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(p.events / seconds) : 0;
  if (p.totalBytes === undefined) return `${formatBytes(p.bytes)} of local files read, ${rate} events/s`;
  const share = p.totalBytes > 0 ? Math.min(1, p.bytes / p.totalBytes) : 1;
  const eta =
    p.bytes > 0 && seconds > 0 ? formatDuration((seconds * (p.totalBytes - p.bytes)) / p.bytes) : '…';
  return `${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)} (${Math.floor(share * 100)} %), ${rate} events/s, ETA ${eta}`;
}

export interface Progress {
  update(p: ProgressState): void;
  stop(): void;
}

/**
 * A bar on a terminal's stderr; lines every `intervalMs` when `lines` is set (a pipe);
 * otherwise nothing.
 */
export function startProgress(
  label: string,
  options: { bar: boolean; lines: boolean; intervalMs?: number },
): Progress {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let last: ProgressState = { bytes: 0, totalBytes: undefined, events: 0 };
  if (options.bar) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} |{bar}| {text}`, hideCursor: true, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0, { text: '' });
    let stopped = false;
    return {
      update(p) {
        last = p;
        bar.setTotal(Math.max(1, p.totalBytes ?? p.bytes));
        bar.update(p.bytes, { text: progressText(p, elapsed()) });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        const end = last.totalBytes ?? last.bytes;
        bar.update(end, { text: progressText({ ...last, bytes: end }, elapsed()) });
        bar.stop();
      },
    };
  }
  if (options.lines) {
    const every = options.intervalMs ?? 2000;
    let printed = 0;
    let stopped = false;
    return {
      update(p) {
        last = p;
        if (elapsed() - printed >= every) {
          printed = elapsed();
          process.stderr.write(`${label}: ${progressText(p, printed)}\n`);
        }
      },
      stop() {
        if (stopped) return;
        stopped = true;
        process.stderr.write(`${label}: ${progressText(last, elapsed())}\n`);
      },
    };
  }
  return { update() {}, stop() {} };
}
