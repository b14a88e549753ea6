/**
 * The engine process: runs exactly one job and exits. Started by a host (child_process.fork or Electron's
 * utilityProcess.fork) as main/jobs/engine-worker.ts (Node runs the TypeScript directly) or as the
 * bundled out/engine-worker.cjs.
 *
 * host → engine: {type:'run', …} once, then possibly {type:'cancel'}.
 * engine → host: progress/log messages, then either result + done, or error.
 */
import type { JobContext, LogLevel, Progress } from '../engine/job-context.ts';
import { toErrorShape, WhittleError } from '../engine/errors.ts';
import { runRecipe } from '../engine/pipeline/runner.ts';
import { Coalescer } from './coalescer.ts';
import { parseHostMessage, type EngineToHost, type RunMessage } from './protocol.ts';

/** How often progress may cross the process boundary; the host coalesces further for the UI. */
const PROGRESS_INTERVAL_MS = 40;

interface ParentPort {
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
  postMessage(message: unknown): void;
}

interface Channel {
  post(message: EngineToHost): Promise<void>;
  onMessage(listener: (raw: unknown) => void): void;
}

function parentChannel(): Channel {
  const port = (process as unknown as { parentPort?: ParentPort }).parentPort;
  if (port) {
    return {
      post: (message) => {
        port.postMessage(message);
        return Promise.resolve();
      },
      onMessage: (listener) => port.on('message', (e) => listener(e.data)),
    };
  }
  if (typeof process.send === 'function') {
    return {
      post: (message) => new Promise<void>((resolve) => {
        if (!process.connected) return resolve();
        process.send!(message, undefined, {}, () => resolve());
      }),
      onMessage: (listener) => process.on('message', listener),
    };
  }
  throw new Error('The engine worker must be started by Whittle (it has no channel to a parent process).');
}

const channel = parentChannel();
let controller: AbortController | null = null;
let finished = false;

async function exitAfter(last: Promise<void>, code: number): Promise<void> {
  try {
    await last;
  } finally {
    process.exit(code);
  }
}

/** Reports an error and exits. */
function fail(e: unknown, exitCode: number): void {
  if (finished) return;
  finished = true;
  void exitAfter(channel.post({ type: 'error', error: toErrorShape(e) }), exitCode);
}

async function run(message: RunMessage): Promise<void> {
  controller = new AbortController();
  const { signal } = controller;
  const progress = new Coalescer<Progress>(PROGRESS_INTERVAL_MS, (p) => {
    void channel.post({ type: 'progress', phase: p.phase, done: p.done, total: p.total, message: p.message ?? '' });
  }, { sameKind: (a, b) => a.phase === b.phase });
  const ctx: JobContext = {
    signal,
    workDir: message.workDir,
    progress: (p) => progress.push({ ...p }),
    log: (level: LogLevel, text: string) => {
      progress.flush();
      void channel.post({ type: 'log', level, text });
    },
    point: (p) => {
      progress.flush();
      void channel.post({ type: 'point', series: p.series, step: p.step, values: p.values });
    },
  };
  try {
    const result = await runRecipe(message.recipe, ctx);
    progress.flush();
    if (signal.aborted) throw new WhittleError('CANCELLED', 'The job was cancelled.');
    if (finished) return;
    finished = true;
    void channel.post({ type: 'result', metrics: result.metrics, artefacts: result.artefacts, details: result.details });
    await exitAfter(channel.post({ type: 'done' }), 0);
  } catch (e) {
    progress.flush();
    fail(signal.aborted ? new WhittleError('CANCELLED', 'The job was cancelled.') : e, 0);
  }
}

channel.onMessage((raw) => {
  const message = parseHostMessage(raw);
  switch (message.type) {
    case 'invalid':
      fail(message.error, 1);
      return;
    case 'cancel':
      if (controller) controller.abort();
      else fail(new WhittleError('CANCELLED', 'The job was cancelled before it started.'), 0);
      return;
    case 'run':
      if (controller) {
        fail(new WhittleError('INTERNAL', 'The engine process was asked to run a second job.'), 1);
        return;
      }
      void run(message);
  }
});

process.on('uncaughtException', (e) => fail(e, 1));
process.on('unhandledRejection', (e) => fail(e, 1));
// The host went away (crashed or was killed): nobody is left to report to.
process.on('disconnect', () => process.exit(0));
