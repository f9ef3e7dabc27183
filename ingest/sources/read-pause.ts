/**
 * Back-pressure for stream sources (syslog over TCP, RELP): reading stops while a condition
 * holds (the queue is above its high-water mark or unreachable, or a backlog piles up here) and
 * starts again once a check, repeated every `everyMs`, says it no longer holds.
 */
import type { Socket } from 'node:net';

export class ReadPause {
  private paused = false;
  private readonly socket: Socket;
  private readonly mustPause: () => Promise<boolean>;
  private readonly everyMs: number;

  constructor(socket: Socket, mustPause: () => Promise<boolean>, everyMs: number) {
    this.socket = socket;
    this.mustPause = mustPause;
    this.everyMs = everyMs;
  }

  /** Pause reading if the condition holds now; nothing to do while already paused. */
  async check(): Promise<void> {
    if (this.paused || !(await this.mustPause())) return;
    if (this.paused) return; // another check paused it while this one was waiting
    this.paused = true;
    this.socket.pause();
    const resume = async () => {
      if (this.socket.destroyed) return;
      if (await this.mustPause()) setTimeout(resume, this.everyMs);
      else {
        this.paused = false;
        this.socket.resume();
      }
    };
    setTimeout(resume, this.everyMs);
  }
}
