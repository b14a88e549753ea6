/**
 * Engine processes as Electron utility processes (the desktop app). Typed against the few members of
 * Electron's `utilityProcess` it uses, so this file compiles and loads without Electron; the Electron
 * layer passes `electron.utilityProcess` in, or calls `UtilityProcessHost.fromElectron()`.
 */
import type { Readable } from 'node:stream';
import type { EngineHost, EngineProcess, ExitListener, OutputListener } from './engine-host.ts';
import { Listeners } from './engine-host.ts';
import { parseEngineMessage, type EngineToHost, type HostToEngine } from './protocol.ts';

/** The members of Electron's UtilityProcess used here. */
export interface UtilityProcessLike {
  readonly pid: number | undefined;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  postMessage(message: unknown): void;
  kill(): boolean;
  on(event: 'exit', listener: (code: number) => void): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

/** The member of Electron's `utilityProcess` module used here. */
export interface UtilityProcessApi {
  fork(modulePath: string, args?: string[], options?: {
    env?: NodeJS.ProcessEnv;
    execArgv?: string[];
    cwd?: string;
    stdio?: 'pipe' | 'ignore' | 'inherit';
    serviceName?: string;
  }): UtilityProcessLike;
}

class UtilityEngineProcess implements EngineProcess {
  private readonly child: UtilityProcessLike;
  private readonly messages = new Listeners<[EngineToHost]>();
  private readonly exits = new Listeners<[number | null, NodeJS.Signals | null]>();
  private readonly output = new Listeners<['stdout' | 'stderr', string]>();
  private killed = false;
  private exited = false;

  constructor(api: UtilityProcessApi, workerPath: string) {
    this.child = api.fork(workerPath, [], { stdio: 'pipe', serviceName: 'Whittle engine', execArgv: [] });
    this.child.on('message', (raw) => this.messages.emit(parseEngineMessage(raw)));
    this.child.stdout?.setEncoding('utf8').on('data', (t: string) => this.output.emit('stdout', t));
    this.child.stderr?.setEncoding('utf8').on('data', (t: string) => this.output.emit('stderr', t));
    this.child.on('exit', (code) => {
      this.exited = true;
      // Electron reports only an exit code; a kill we asked for is reported as SIGKILL. The next macrotask
      // lets messages already received by the main process be delivered first.
      setTimeout(() => this.exits.emit(this.killed ? null : code, this.killed ? 'SIGKILL' : null), 0);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(message: HostToEngine): void {
    if (!this.exited) this.child.postMessage(message);
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
    this.killed = true;
    this.child.kill();
  }
}

export class UtilityProcessHost implements EngineHost {
  readonly workerPath: string;
  private readonly api: UtilityProcessApi;

  /** `workerPath`: the bundled engine worker (appPaths.engineWorker()). */
  constructor(workerPath: string, api: UtilityProcessApi) {
    this.workerPath = workerPath;
    this.api = api;
  }

  /** Loads Electron only when called (inside the desktop app). */
  static async fromElectron(workerPath: string): Promise<UtilityProcessHost> {
    const electron = (await import('electron')) as unknown as { utilityProcess: UtilityProcessApi; default?: { utilityProcess: UtilityProcessApi } };
    const api = electron.utilityProcess ?? electron.default?.utilityProcess;
    if (!api) throw new Error('Electron utilityProcess is not available in this process.');
    return new UtilityProcessHost(workerPath, api);
  }

  spawn(): EngineProcess {
    return new UtilityEngineProcess(this.api, this.workerPath);
  }
}
