/**
 * The composition root: one Whittle app (history, job service, services, router, event bus) as the
 * desktop app, serve mode and the CLI all run it. Transports attach to `router` and `events`.
 */
import path from 'node:path';
import { createEventBus, type EventBus } from './api/events.ts';
import { consoleLogger, type Logger } from './api/logger.ts';
import { createRouter, type Handlers, type Router, type SenderCheck, type TransportKind } from './api/router.ts';
import { createServices, type Dialogs } from './api/services.ts';
import { createOffThreadInspector } from './api/inspect-off-thread.ts';
import { openHistory, resolveHome, type History } from './history/index.ts';
import { ChildProcessHost } from './jobs/child-process-host.ts';
import { cleanInterruptedCustomOutput } from './jobs/output-folder.ts';
import type { EngineHost } from './jobs/engine-host.ts';
import { JobService, type JobServiceOptions } from './jobs/service.ts';
import { appPaths } from './paths.ts';

export interface WhittleAppOptions {
  /** Where the history and outputs live; default WHITTLE_HOME, else the platform's per-user folder. */
  home?: string;
  transport: TransportKind;
  /** The engine process's entry; default out/engine-worker.cjs (tests pass main/jobs/engine-worker.ts). */
  workerPath?: string;
  /** How engine processes start; default Node child processes of `workerPath` (the desktop app passes a
   *  UtilityProcessHost). */
  host?: EngineHost;
  /** Native dialogs for models.pickFile (desktop only). */
  dialogs?: Dialogs;
  /** Who may call (see router.ts); default: memory always, serve when authenticated, electron never. */
  checkSender?: SenderCheck;
  logger?: Logger;
  /** Where job outputs go; default <home>/experiments. */
  outputRoot?: string;
  /** Job service tuning (tests shorten the grace periods). */
  jobs?: Pick<JobServiceOptions, 'concurrency' | 'cancelGraceMs' | 'progressIntervalMs' | 'logFlushMs'>;
}

export interface WhittleApp {
  home: string;
  transport: TransportKind;
  services: Handlers;
  router: Router;
  events: EventBus;
  history: History;
  jobs: JobService;
  logger: Logger;
  /** Stops running jobs (waiting for their engine processes) and closes the history. */
  close(): Promise<void>;
}

export function createWhittleApp(options: WhittleAppOptions): WhittleApp {
  const home = options.home ? path.resolve(options.home) : resolveHome();
  const logger = options.logger ?? consoleLogger({ debug: !!process.env.WHITTLE_DEBUG });
  const events = createEventBus({ logger });
  const history = openHistory({ home });
  if (history.interruptedAtOpen > 0) {
    logger.log('info', `${history.interruptedAtOpen} experiment(s) left running by an earlier Whittle were marked interrupted`);
    try {
      const removed = cleanInterruptedCustomOutput(history.interruptedIdsAtOpen.map((id) => history.get(id).recipe));
      if (removed.length > 0) logger.log('info', `removed ${removed.length} unfinished output folder(s) they left: ${removed.join(', ')}`);
    } catch (e) {
      logger.log('warn', `could not remove the unfinished output folders of interrupted experiments: ${(e as Error).message}`);
    }
  }
  const host = options.host ?? new ChildProcessHost(options.workerPath ?? appPaths.engineWorker());
  // Job outputs and the output folders of imported bundles go to the same place.
  const outputRoot = options.outputRoot ? path.resolve(options.outputRoot) : path.join(home, 'experiments');
  const jobs = new JobService({
    ...options.jobs,
    history,
    host,
    outputRoot,
    emit: (channel, payload) => events.emit(channel, payload),
  });
  // Models are read and decoded on a worker thread: the main process keeps answering calls meanwhile.
  const inspector = createOffThreadInspector();
  // GGUF export and llama.cpp evaluation take minutes: a worker of their own, so inspections do not wait.
  const ggufWorker = createOffThreadInspector();
  const services = createServices({
    transport: options.transport, home, history, jobs, events, inspectModel: (file) => inspector.inspect(file), prunePlan: (file, step) => inspector.prunePlan(file, step), distillPlan: (params) => inspector.distillPlan(params), importHf: (folder, request) => inspector.importHf(folder, request), dialogs: options.dialogs,
    evaluateGguf: (request) => ggufWorker.evaluateGguf(request),
    outputRoot,
  });
  const router = createRouter(services, { checkSender: options.checkSender, logger });

  let closing: Promise<void> | null = null;
  return {
    home,
    transport: options.transport,
    services,
    router,
    events,
    history,
    jobs,
    logger,
    close() {
      closing ??= (async () => {
        try {
          await jobs.shutdown();
          await inspector.close();
          await ggufWorker.close();
        } finally {
          history.close();
        }
      })();
      return closing;
    },
  };
}
