/**
 * How the main process starts engine processes. One implementation per runtime: Node's child_process
 * (CLI, serve mode, tests) and Electron's utilityProcess (desktop app). The job service sees only this.
 */
import type { EngineToHost, HostToEngine } from './protocol.ts';

export type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;
export type OutputListener = (stream: 'stdout' | 'stderr', text: string) => void;

export interface EngineProcess {
  /** Operating-system process id; undefined until the process has started (or when it failed to). */
  readonly pid: number | undefined;
  send(message: HostToEngine): void;
  /** Messages arrive already validated; a malformed one arrives as an INTERNAL error message. */
  onMessage(listener: (message: EngineToHost) => void): void;
  /** Called once, after every message the process sent has been delivered. */
  onExit(listener: ExitListener): void;
  /** Text the process wrote to stdout/stderr (native libraries report crashes there). */
  onOutput(listener: OutputListener): void;
  /** Ends the process at once (SIGKILL where the platform has signals). */
  kill(): void;
}

export interface EngineHost {
  spawn(): EngineProcess;
}

/** A tiny single-event fan-out used by the host implementations. */
export class Listeners<A extends unknown[]> {
  private list: ((...args: A) => void)[] = [];
  add(listener: (...args: A) => void): void {
    this.list.push(listener);
  }
  emit(...args: A): void {
    for (const l of this.list) l(...args);
  }
}
