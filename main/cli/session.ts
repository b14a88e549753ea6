/**
 * The CLI's handle on Whittle: the same app the desktop and serve mode run (history, job system, engine
 * process), called through its router exactly as a transport would, so every parameter is validated by
 * the contract.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CallName, CallParams, CallResults, EventMessage } from '../../preload/contract.ts';
import type { Logger } from '../api/logger.ts';
import { createWhittleApp, type WhittleApp } from '../app.ts';
import { WhittleError, fromErrorShape } from '../engine/errors.ts';
import { appPaths } from '../paths.ts';
import type { Output } from './output.ts';

export interface Session {
  app: WhittleApp;
  call<M extends CallName>(method: M, params: CallParams<M>): Promise<CallResults[M]>;
  subscribe(listener: (event: EventMessage) => void): () => void;
  close(): Promise<void>;
}

/**
 * The engine process's entry: WHITTLE_ENGINE_WORKER when set (tests run main/jobs/engine-worker.ts from
 * the sources), else the bundled out/engine-worker.cjs.
 */
export function engineWorkerPath(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.WHITTLE_ENGINE_WORKER?.trim();
  const worker = override ? path.resolve(override) : appPaths.engineWorker();
  if (!existsSync(worker)) {
    throw new WhittleError('INTERNAL', override
      ? `WHITTLE_ENGINE_WORKER points to ${worker}, which does not exist.`
      : `The engine process is missing (${worker}). Run \`npm run build\` first.`, { path: worker });
  }
  return worker;
}

/** The app's log on stderr: warnings and errors always, info unless --quiet, debug with WHITTLE_DEBUG. */
export function cliLogger(out: Output): Logger {
  const debug = Boolean(process.env.WHITTLE_DEBUG);
  return {
    log(level, message, error) {
      if (level === 'debug' && !debug) return;
      const stack = debug && error instanceof Error ? `\n${error.stack}` : '';
      if (level === 'info' || level === 'debug') out.info(`${message}${stack}`);
      else out.warn(`${message}${stack}`);
    },
  };
}

export async function openSession(options: { home?: string; transport: 'memory' | 'serve'; needsEngine: boolean; out: Output }): Promise<Session> {
  const app = createWhittleApp({
    home: options.home,
    transport: options.transport,
    workerPath: options.needsEngine ? engineWorkerPath() : undefined,
    logger: cliLogger(options.out),
  });
  let nextId = 1;
  return {
    app,
    async call(method, params) {
      const reply = await app.router.dispatch({ type: 'call', id: nextId++, method, params }, { transport: 'memory' });
      if (!reply.ok) throw fromErrorShape(reply.error);
      return reply.value as CallResults[typeof method];
    },
    subscribe: (listener) => app.events.subscribe(listener),
    close: async () => { await app.close(); },
  };
}
