/** Engine processes as Node child processes (node:child_process.fork of the engine worker script). */
import { fork, type ChildProcess } from 'node:child_process';
import type { EngineHost, EngineProcess, ExitListener, OutputListener } from './engine-host.ts';
import { Listeners } from './engine-host.ts';
import { parseEngineMessage, type EngineToHost, type HostToEngine } from './protocol.ts';

export interface ChildProcessHostOptions {
  /** Node flags for the engine process; empty by default (a test runner's loader flags are not inherited). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** After 'exit', how long to wait for the message channel to drain before reporting the exit anyway. */
const DRAIN_TIMEOUT_MS = 2000;

class ChildEngineProcess implements EngineProcess {
  private readonly child: ChildProcess;
  private readonly messages = new Listeners<[EngineToHost]>();
  private readonly exits = new Listeners<[number | null, NodeJS.Signals | null]>();
  private readonly output = new Listeners<['stdout' | 'stderr', string]>();
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private reported = false;
  private disconnected = false;

  constructor(workerPath: string, options: ChildProcessHostOptions) {
    this.child = fork(workerPath, [], {
      execArgv: options.execArgv ?? [],
      env: options.env ?? process.env,
      cwd: options.cwd,
      // Structured clone keeps NaN/Infinity in metrics and typed arrays in details.
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child.on('message', (raw) => this.messages.emit(parseEngineMessage(raw)));
    this.child.stdout?.setEncoding('utf8').on('data', (t: string) => this.output.emit('stdout', t));
    this.child.stderr?.setEncoding('utf8').on('data', (t: string) => this.output.emit('stderr', t));
    this.child.on('disconnect', () => {
      this.disconnected = true;
      this.maybeReportExit();
    });
    this.child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      // Messages still in the pipe are delivered before 'disconnect'; report the exit after them.
      if (!this.disconnected) setTimeout(() => { this.disconnected = true; this.maybeReportExit(); }, DRAIN_TIMEOUT_MS).unref();
      this.maybeReportExit();
    });
    this.child.on('error', (e) => {
      // Spawning failed (or a message could not be sent to a dying process).
      if (this.child.pid === undefined && !this.exited) {
        this.output.emit('stderr', `Could not start the engine process: ${e.message}\n`);
        this.exited = { code: null, signal: null };
        this.disconnected = true;
        this.maybeReportExit();
      }
    });
  }

  private maybeReportExit(): void {
    if (this.reported || !this.exited || !this.disconnected) return;
    this.reported = true;
    const { code, signal } = this.exited;
    // Let listeners registered in the same tick as a synchronous spawn failure see it.
    queueMicrotask(() => this.exits.emit(code, signal));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(message: HostToEngine): void {
    if (!this.child.connected) return;
    this.child.send(message, (e) => {
      if (e) this.output.emit('stderr', `Could not send a message to the engine process: ${e.message}\n`);
    });
  }

  onMessage(listener: (message: EngineToHost) => void): void {
    this.messages.add(listener);
  }

  onExit(listener: ExitListener): void {
    this.exits.add(listener);
  }

  onOutput(listener: OutputListener): void {
    this.output.add(listener);
  }

  kill(): void {
    if (this.exited) return;
    this.child.kill('SIGKILL');
  }
}

export class ChildProcessHost implements EngineHost {
  readonly workerPath: string;
  private readonly options: ChildProcessHostOptions;

  /** `workerPath`: main/jobs/engine-worker.ts (Node ≥ 23.6 runs it directly) or the bundled out/engine-worker.cjs. */
  constructor(workerPath: string, options: ChildProcessHostOptions = {}) {
    this.workerPath = workerPath;
    this.options = options;
  }

  spawn(): EngineProcess {
    return new ChildEngineProcess(this.workerPath, this.options);
  }
}
