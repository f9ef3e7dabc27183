/**
 * Rule work off the thread that serves requests. Checking rule text and filters, testing rules
 * over supplied events and previewing them over stored events can take seconds on hostile or
 * merely large input; done on the API's only thread they froze every other request, liveness
 * included. Here each runs in a worker thread of a small pool, with:
 *
 *   - a time budget: past it the worker is terminated (the work stops, its memory is freed)
 *     and a fresh one takes its place;
 *   - a memory ceiling per worker (V8 heap limit): exceeding it ends that task only;
 *   - a bounded queue: beyond it a task is refused at once (the API answers 503, Retry-After).
 *
 * The pool starts its workers on first use. See sandbox-worker.ts for the tasks themselves.
 */
import { Worker } from 'node:worker_threads';
import type { GatewatchConfig } from '../../core/config/schema.ts';
import type { Incident } from '../../core/schema/incident.ts';
import type { Diagnostic, FilterExpr, RuleIR } from '../../parser/index.ts';
import type { PreviewResult, StoredEvent, TimeRange } from '../ports.ts';

export type SandboxTask =
  | {
      kind: 'parse-rules';
      text: string;
      file: string;
      /** Resolve `include` and `list … = file(…)` from disk (the distributed and embedded API). */
      diskReaders: boolean;
      lists?: Readonly<Record<string, readonly string[]>>;
    }
  | { kind: 'parse-filter'; text: string; file: string }
  | { kind: 'test'; rules: RuleIR[]; events: StoredEvent[]; now: number }
  | { kind: 'preview'; rule: RuleIR; range: TimeRange };

export interface SandboxResults {
  'parse-rules': { rules: RuleIR[]; diagnostics: Diagnostic[] };
  'parse-filter': { filter?: FilterExpr; diagnostics: Diagnostic[] };
  test: Incident[];
  preview: PreviewResult;
}

/** What the worker needs to preview over Elasticsearch. */
export interface SandboxWorkerData {
  elasticsearch?: GatewatchConfig['elasticsearch'];
  maxGroups?: number;
  /** detections.foldWindow (ms): how previews fold detections into incidents, as runs do. */
  foldWindowMs?: number;
}

/** The queue is full: try again shortly. */
export class SandboxBusyError extends Error {
  override name = 'SandboxBusyError';
}
/** The task ran out of its time budget and was stopped. */
export class SandboxTimeoutError extends Error {
  override name = 'SandboxTimeoutError';
  readonly budgetMs: number;
  constructor(budgetMs: number) {
    super(`stopped after its ${budgetMs / 1000} s budget`);
    this.budgetMs = budgetMs;
  }
}
/** The task needed more memory than a worker may use and was stopped. */
export class SandboxMemoryError extends Error {
  override name = 'SandboxMemoryError';
}

export interface SandboxOptions {
  /** Workers, i.e. tasks run at once. */
  size: number;
  /** Tasks waiting for a worker before new ones are refused. */
  queueLimit: number;
  /** Time budget of one task (ms), from when a worker takes it. */
  timeoutMs: number;
  /** V8 old-generation limit per worker (MB). */
  memoryMb: number;
  workerData?: SandboxWorkerData;
}

interface Pending {
  task: SandboxTask;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  running?: Pending & { id: number; timer: NodeJS.Timeout };
}

export class RuleSandbox {
  private readonly options: SandboxOptions;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(options: SandboxOptions) {
    this.options = options;
  }

  /** Tasks running or waiting now. */
  get load(): number {
    return this.slots.filter((s) => s.running).length + this.queue.length;
  }

  run<K extends SandboxTask['kind']>(task: Extract<SandboxTask, { kind: K }>): Promise<SandboxResults[K]> {
    if (this.closed) return Promise.reject(new Error('rule sandbox closed'));
    const idle = this.idleSlot();
    if (!idle && this.queue.length >= this.options.queueLimit)
      return Promise.reject(new SandboxBusyError(`${this.load} rule tasks running or waiting`));
    return new Promise((resolve, reject) => {
      const pending: Pending = { task, resolve: resolve as (v: unknown) => void, reject };
      if (idle) this.start(idle, pending);
      else this.queue.push(pending);
    });
  }

  private idleSlot(): Slot | undefined {
    const idle = this.slots.find((s) => !s.running);
    if (idle) return idle;
    if (this.slots.length < this.options.size) {
      const slot = { worker: this.spawn() };
      this.slots.push(slot);
      this.watch(slot);
      return slot;
    }
    return undefined;
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./sandbox-worker.ts', import.meta.url), {
      workerData: this.options.workerData ?? {},
      resourceLimits: { maxOldGenerationSizeMb: this.options.memoryMb },
    });
    // An idle pool must not keep the process alive.
    worker.unref();
    return worker;
  }

  private watch(slot: Slot): void {
    const worker = slot.worker;
    worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string; name?: string }) => {
      const running = slot.running;
      if (!running || running.id !== m.id) return;
      clearTimeout(running.timer);
      slot.running = undefined;
      if (m.ok) running.resolve(m.value);
      // The error's name travels too (e.g. Elasticsearch's ConnectionError: a 503, not a 500).
      else
        running.reject(
          Object.assign(new Error(m.error ?? 'rule task failed'), m.name ? { name: m.name } : {}),
        );
      this.next(slot);
    });
    worker.on('error', (err) => this.replace(slot, worker, err));
    worker.on('exit', () => this.replace(slot, worker, new Error('rule worker exited')));
  }

  /** The worker died (memory ceiling, crash) or was stopped: fail its task, start a fresh one. */
  private replace(slot: Slot, dead: Worker, err: Error): void {
    if (slot.worker !== dead) return;
    const running = slot.running;
    slot.running = undefined;
    if (running) {
      clearTimeout(running.timer);
      const oom = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      running.reject(oom ? new SandboxMemoryError(`needed more than ${this.options.memoryMb} MB`) : err);
    }
    if (this.closed) return;
    slot.worker = this.spawn();
    this.watch(slot);
    this.next(slot);
  }

  private start(slot: Slot, pending: Pending): void {
    const id = this.nextId++;
    const worker = slot.worker;
    const timer = setTimeout(() => {
      const running = slot.running;
      if (!running || running.id !== id) return;
      slot.running = undefined;
      running.reject(new SandboxTimeoutError(this.options.timeoutMs));
      // Terminating stops the work and frees its memory; 'exit' then starts a replacement.
      slot.running = undefined;
      void worker.terminate();
    }, this.options.timeoutMs);
    slot.running = { ...pending, id, timer };
    worker.postMessage({ id, task: pending.task });
  }

  private next(slot: Slot): void {
    const pending = this.queue.shift();
    if (pending) this.start(slot, pending);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('rule sandbox closed'));
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.running) clearTimeout(s.running.timer);
        await s.worker.terminate();
      }),
    );
  }
}
