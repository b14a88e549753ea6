/**
 * The job service: a queue of recipes, each run in its own engine process, reported as events and
 * recorded in the history.
 *
 * Per job, every event (progress, log, result, finished) carries a sequence number that increases by one
 * per event. Progress is coalesced (at most one per `progressIntervalMs`); logs, the result and the
 * finish are always delivered, and `job.finished` is always the job's last event.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type {
  ErrorShape, EventName, EventPayloads, JobFinished, JobInfo, JobProgress, LogLine, Metric,
} from '../../preload/contract.ts';
import { CHECKPOINTS_ARTEFACT, describeStep, recipeKind } from '../../preload/methods.ts';
import { experimentName } from '../../preload/naming.ts';
import type { Recipe, ResumeFrom } from '../../preload/recipe.ts';
import type { SeriesPoint } from '../../preload/series.ts';
import { toErrorShape, WhittleError } from '../engine/errors.ts';
import { cannotCreateFolder } from '../engine/folder-error.ts';
import { checkpointFolder } from '../engine/train/checkpoint-home.ts';
import type { History, NewLogLine } from '../history/history.ts';
import { Coalescer } from './coalescer.ts';
import { OutputTail, unexpectedExitError } from './crash.ts';
import type { EngineHost, EngineProcess } from './engine-host.ts';
import { JobEta, type SegmentShare } from './eta.ts';
import { answerableFromCache, EvaluationCache, metricsOfSubject, type CacheHit, type CacheKey, type StoredEntry } from './evaluation-cache.ts';
import { ModelFileFactsCache, modelFileIn } from './model-file.ts';
import { cleanFailedJobOutput, cleanInterruptedOutput, jobFolderName } from './output-folder.ts';
import type { EngineResult, EngineToHost } from './protocol.ts';
import { progressPlan } from './progress-plan.ts';
import { parseRecipe } from './recipe-input.ts';

export type Emit = <E extends EventName>(channel: E, payload: EventPayloads[E]) => void;

/** The history calls the job service makes. */
export type JobHistory = Pick<
  History,
  'createExperiment' | 'joinGroup' | 'markRunning' | 'finish' | 'addMetrics' | 'addArtefacts' | 'appendLog' | 'setDetails' | 'transaction'
  | 'cacheGet' | 'cachePut' | 'latestEvaluation' | 'recordOutput' | 'linkInput'
>;

export interface JobServiceOptions {
  history: JobHistory;
  host: EngineHost;
  /** Each job writes to `<outputRoot>/<experimentId>-<slug>/`. */
  outputRoot: string;
  emit: Emit;
  /** Jobs running at once (each in its own engine process). Default 1. */
  concurrency?: number;
  /** After a cancel, how long the engine may take to stop before it is killed. Default 3000 ms. */
  cancelGraceMs?: number;
  /** Series points (a training curve) go out in batches at most this often per job. Default 250 ms. */
  pointIntervalMs?: number;
  /** At most one progress event per job per this many ms. Default 100 (10 per second). */
  progressIntervalMs?: number;
  /** Log lines are written to the history in batches at most this far apart. Default 250 ms. */
  logFlushMs?: number;
  /** Answer repeated evaluations from the evaluation cache (see evaluation-cache.ts). Default true. */
  evaluationCache?: boolean;
}

export interface StartedJob { jobId: string; experimentId: number }

type Progressless = Omit<JobProgress, 'seq'>;

/** What the evaluation cache knows about a job, found when it is submitted. */
interface JobCache {
  /** The settings hash; null when the evaluation is not cached. */
  settings: string | null;
  /** The recipe's model (the original of a compression job). */
  model: { path: string; sha256: string; contentSha256: string } | null;
  /** An earlier evaluation of the model with the same settings (looked up only for a job it can answer). */
  hit: CacheHit | null;
  /** An evaluate-only job answered from `hit` without an engine process. */
  answer: boolean;
}

interface Job {
  readonly jobId: string;
  readonly experimentId: number;
  readonly name: string;
  readonly recipe: Recipe;
  readonly cache: JobCache;
  /** The sweep the job belongs to: a sweep's jobs run one after another, whatever the concurrency. */
  groupId: number | null;
  state: 'queued' | 'running' | 'finished';
  seq: number;
  progress: JobProgress | null;
  /** The whole job's progress and time left, from its plan. */
  readonly eta: JobEta;
  readonly segments: SegmentShare[];
  readonly coalescer: Coalescer<Progressless>;
  process: EngineProcess | null;
  cancelRequested: boolean;
  cancelMessage: string;
  result: EngineResult | null;
  startedAt: number;
  /** The job's folder, once created. */
  workDir: string | null;
  /** How the job ended, once it has. */
  status: JobFinished['status'] | null;
  logs: NewLogLine[];
  /** The series points the job has streamed (the last MAX_POINTS), for watchers that attach later. */
  points: SeriesPoint[];
  /** Points not sent yet, and the timer that sends them. */
  pendingPoints: SeriesPoint[];
  pointTimer: ReturnType<typeof setTimeout> | null;
  logTimer: ReturnType<typeof setTimeout> | null;
  killTimer: ReturnType<typeof setTimeout> | null;
  readonly stderr: OutputTail;
  readonly finished: Promise<JobFinished>;
  resolveFinished: (f: JobFinished) => void;
}

const LOG_BATCH = 200;
const MAX_POINTS = 20_000;
const RECENT_FINISHED = 100;
/** Retries of an experiment's final record after the database refused it, FINISH_RETRY_MS apart. */
const FINISH_RETRIES = 5;
const FINISH_RETRY_MS = 2000;

function cancelledError(message: string): ErrorShape {
  return { code: 'CANCELLED', message };
}

export class JobService {
  private readonly history: JobHistory;
  private readonly host: EngineHost;
  private readonly outputRoot: string;
  private readonly emitTo: Emit;
  private readonly concurrency: number;
  private readonly cancelGraceMs: number;
  private readonly progressIntervalMs: number;
  private readonly pointIntervalMs: number;
  private readonly logFlushMs: number;

  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  /** Engine processes that have not exited yet (a finished job's process may still be on its way out). */
  private readonly live = new Set<EngineProcess>();
  private readonly recentlyFinished = new Map<string, JobFinished>();
  private readonly modelFacts = new ModelFileFactsCache();
  private readonly evaluations: EvaluationCache | null;
  private idleWaiters: (() => void)[] = [];
  /** Jobs whose folder is being made: running, not yet with an engine process. */
  private readonly starting = new Set<Job>();
  private closed = false;

  constructor(options: JobServiceOptions) {
    this.history = options.history;
    this.host = options.host;
    this.outputRoot = options.outputRoot;
    this.emitTo = options.emit;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.cancelGraceMs = options.cancelGraceMs ?? 3000;
    this.progressIntervalMs = options.progressIntervalMs ?? 100;
    this.pointIntervalMs = options.pointIntervalMs ?? 250;
    this.logFlushMs = options.logFlushMs ?? 250;
    this.evaluations = options.evaluationCache === false ? null : new EvaluationCache(this.history, this.modelFacts);
    // What jobs of an earlier run left when they were interrupted (crash, kill -9): partial output folders
    // of engines that are gone, and job folders left empty.
    try {
      cleanInterruptedOutput(this.outputRoot);
    } catch (e) {
      console.error(`whittle: could not clean interrupted output in ${this.outputRoot}:`, e);
    }
  }

  // ── public API ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Validates the recipe, records the model's size and SHA-256, creates the experiment ('queued') and
   * queues the job. Throws INVALID_INPUT (bad recipe) or NOT_FOUND (no model file) before anything is
   * recorded.
   */
  async start(recipeInput: unknown, name?: string, options: { groupId?: number } = {}): Promise<StartedJob> {
    this.assertOpen();
    const parsed = parseRecipe(recipeInput);
    // A folder (an experiment's output) stands for the one .onnx file in it.
    const resolved = path.resolve(parsed.model.path);
    const modelPath = await modelFileIn(resolved);
    const recipe: Recipe = modelPath === resolved ? parsed : { ...parsed, model: { ...parsed.model, path: modelPath } };
    const facts = await this.modelFacts.facts(modelPath);
    this.assertOpen();
    const kind = recipeKind(recipe);
    const cache = await this.cacheFor(recipe, modelPath);
    const textBytes = recipe.evaluation.perplexity ? await stat(recipe.evaluation.perplexity.text).then((s) => s.size, () => null) : null;
    this.assertOpen();
    const jobName = name?.trim() || recipe.name?.trim() || experimentName(recipe);
    // A compression experiment hangs under the latest evaluation of its original, when there is one.
    const parentId = recipe.steps.length > 0 ? this.evaluations?.latestEvaluation(facts.sha256) ?? null : null;
    const experimentId = this.history.transaction(() => {
      const id = this.history.createExperiment({
        name: jobName, kind, recipe: recipeInput, modelPath, modelBytes: facts.bytes, modelSha256: facts.sha256, parentId, status: 'queued',
      });
      // Lineage: the experiment that wrote this very model file, if one did.
      this.history.linkInput(id, facts.sha256);
      return id;
    });
    // A sweep's member (sweep.ts) joins its group as soon as it exists.
    if (options.groupId !== undefined) this.history.joinGroup(experimentId, options.groupId);
    this.recordCheckpoints(experimentId, jobName, recipe);
    const job = this.newJob(randomUUID(), experimentId, jobName, recipe, cache, new JobEta(progressPlan(recipe, { textBytes })));
    job.groupId = options.groupId ?? null;
    this.jobs.set(job.jobId, job);
    this.queue.push(job);
    this.emit('history.changed', { experimentId });
    // Let the caller learn the ids before anything about the job happens.
    setImmediate(() => this.pump());
    return { jobId: job.jobId, experimentId };
  }

  /**
   * Queued: removed and recorded as cancelled. Running: asked to stop, killed after the grace period.
   * False when the job is unknown, already finished, or has already delivered its result.
   */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job || job.state === 'finished') return false;
    if (job.state === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.finalize(job, 'cancelled', cancelledError('The job was cancelled before it started.'));
      return true;
    }
    if (job.result) return false;
    this.requestStop(job, 'The job was cancelled.', this.cancelGraceMs);
    return true;
  }

  list(): JobInfo[] {
    const out: JobInfo[] = [];
    for (const job of this.jobs.values()) {
      if (job.state === 'finished') continue;
      out.push({
        jobId: job.jobId, experimentId: job.experimentId, name: job.name, status: job.state, progress: job.progress,
        ...(job.points.length > 0 ? { points: [...job.points] } : {}),
      });
    }
    return out;
  }

  /** The job's `job.finished` payload once it has finished. */
  whenFinished(jobId: string): Promise<JobFinished> {
    const job = this.jobs.get(jobId);
    if (job) return job.finished;
    const done = this.recentlyFinished.get(jobId);
    if (done) return Promise.resolve(done);
    return Promise.reject(new WhittleError('NOT_FOUND', `There is no job ${jobId}.`, { jobId }));
  }

  /** The operating-system process id of a running job's engine process. */
  enginePid(jobId: string): number | undefined {
    return this.jobs.get(jobId)?.process?.pid;
  }

  /** Cancels queued jobs, stops running ones (killing them after `graceMs`) and waits for every engine process to exit. */
  async shutdown(graceMs = Math.min(this.cancelGraceMs, 1000)): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      this.finalize(job, 'cancelled', cancelledError('Whittle was shut down before this job started.'));
    }
    for (const job of this.jobs.values()) {
      if (job.state === 'running') this.requestStop(job, 'Whittle was shut down while this job was running.', graceMs);
    }
    if (this.live.size === 0 && this.starting.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * A step that writes checkpoints (StepTraits.resumable) gets its folder recorded as an artefact now, so
   * that an experiment that never finishes still says where to resume from (train/checkpoint-home.ts).
   */
  private recordCheckpoints(experimentId: number, jobName: string, recipe: Recipe): void {
    const workDir = path.join(this.outputRoot, jobFolderName(experimentId, jobName));
    const folders = recipe.steps.flatMap((step, i) => (describeStep(step).resumable ? [checkpointFolder(step as { resume?: ResumeFrom }, i, workDir)] : []));
    if (folders.length > 0) this.history.addArtefacts(experimentId, folders.map((p) => ({ kind: CHECKPOINTS_ARTEFACT, path: p, bytes: null })));
  }

  // ── evaluation cache ───────────────────────────────────────────────────────────────────────────────

  /**
   * The job's cache facts. Anything that goes wrong here (a model the engine will reject with a precise
   * message, a text file that vanished) only means no cache: the job then runs and reports it.
   */
  private async cacheFor(recipe: Recipe, modelPath: string): Promise<JobCache> {
    const none: JobCache = { settings: null, model: null, hit: null, answer: false };
    if (!this.evaluations) return none;
    try {
      const settings = await this.evaluations.settingsHash(recipe);
      if (settings === null && recipe.steps.length === 0) return none;
      const identity = await this.evaluations.identity(modelPath);
      const model = { path: identity.path, sha256: identity.sha256, contentSha256: identity.contentSha256 };
      // Only a whole evaluate-only job is answered from the cache; nothing is taken from it for part of a
      // job (a comparison times the original beside the result), nor when the recipe asks for fresh figures.
      const readable = settings !== null && answerableFromCache(recipe);
      const hit = readable ? this.evaluations.lookup({ model: model.contentSha256, settings }) : null;
      return { settings, model, hit, answer: hit !== null };
    } catch {
      return none;
    }
  }

  /** Answers an evaluate-only job from the cache: recorded as done, no engine process. */
  private answerFromCache(job: Job): void {
    const hit = job.cache.hit!;
    const source = hit.from !== null ? `experiment ${hit.from}` : 'an earlier experiment (since deleted)';
    this.onLog(job, 'info', `Answered from the evaluation cache: ${source} evaluated this model (sha256 ${job.cache.model!.contentSha256.slice(0, 12)}…) with the same settings on ${hit.created}. No engine process was started.`);
    job.result = {
      type: 'result',
      metrics: hit.metrics,
      artefacts: [],
      details: {
        cached: { from: hit.from, created: hit.created },
        model: job.cache.model!.path,
        settings: { evaluation: job.recipe.evaluation },
        note: 'These metrics were measured earlier on the same model file with the same evaluation settings, and were not measured again.',
      },
    };
    this.finalize(job, 'done', null);
  }

  /**
   * After a successful job: what it measured goes into the cache, one entry per model (the evaluated
   * model; or the original and the result of a compression), each under its own content sha256.
   * Returns the entries, which the experiment's details record. Nothing is stored for a cached answer.
   */
  private cacheEntries(job: Job, result: EngineResult): { key: CacheKey; metrics: Metric[]; subject: string }[] {
    const { settings, model } = job.cache;
    if (!this.evaluations || settings === null || !model || job.cache.answer) return [];
    const entries: { key: CacheKey; metrics: Metric[]; subject: string }[] = [];
    // The recipe's model evaluated alone (no steps, or only analyses that leave it unchanged).
    entries.push({ subject: 'model', key: { model: model.contentSha256, settings }, metrics: metricsOfSubject(result.metrics, 'model') });
    // A compression: the original and the result, both measured in this job.
    entries.push({ subject: 'original', key: { model: model.contentSha256, settings }, metrics: metricsOfSubject(result.metrics, 'original') });
    const produced = (result.details.result as { contentSha256?: unknown } | undefined)?.contentSha256;
    if (typeof produced === 'string') entries.push({ subject: 'result', key: { model: produced, settings }, metrics: metricsOfSubject(result.metrics, 'result') });
    return entries.filter((e) => e.metrics.length > 0);
  }

  // ── queue ──────────────────────────────────────────────────────────────────────────────────────────

  private assertOpen(): void {
    if (this.closed) throw new WhittleError('INTERNAL', 'Whittle is shutting down and accepts no new jobs.');
  }

  private newJob(jobId: string, experimentId: number, name: string, recipe: Recipe, cache: JobCache, eta: JobEta): Job {
    let resolveFinished!: (f: JobFinished) => void;
    const finished = new Promise<JobFinished>((resolve) => { resolveFinished = resolve; });
    const job: Job = {
      jobId, experimentId, name, recipe, cache, groupId: null,
      state: 'queued', seq: 0, progress: null,
      eta, segments: eta.segments(),
      coalescer: new Coalescer<Progressless>(this.progressIntervalMs, (p) => this.deliverProgress(job, p), { sameKind: (a, b) => a.phase === b.phase }),
      process: null, cancelRequested: false, cancelMessage: '', result: null, startedAt: 0, workDir: null, status: null,
      logs: [], points: [], pendingPoints: [], pointTimer: null, logTimer: null, killTimer: null, stderr: new OutputTail(),
      finished, resolveFinished,
    };
    return job;
  }

  private pump(): void {
    while (!this.closed && this.queue.length > 0 && this.live.size + this.starting.size < this.concurrency) {
      // The first queued job whose sweep has no job running (a sweep's members run one after another).
      const busy = new Set([...this.jobs.values()].filter((j) => j.state === 'running' && j.groupId !== null).map((j) => j.groupId));
      const next = this.queue.findIndex((j) => j.groupId === null || !busy.has(j.groupId));
      if (next < 0) return;
      this.launch(this.queue.splice(next, 1)[0]);
    }
  }

  private launch(job: Job): void {
    job.state = 'running';
    job.startedAt = performance.now();
    // The job's folder is made without blocking the main process; the job counts as live meanwhile.
    this.starting.add(job);
    const workDir = path.join(this.outputRoot, jobFolderName(job.experimentId, job.name));
    void mkdir(workDir, { recursive: true }).then(
      () => {
        this.starting.delete(job);
        job.workDir = workDir;
        if (job.cancelRequested || this.closed) {
          this.finalize(job, 'cancelled', cancelledError(job.cancelMessage || 'The job was cancelled before it started.'));
          this.cleanOutput(job);
        } else {
          this.startEngine(job, workDir);
        }
        this.afterSettled();
      },
      async (e: unknown) => {
        const error = await cannotCreateFolder(e, workDir, 'the job\'s folder', 'choose another home folder (--home or WHITTLE_HOME)');
        this.starting.delete(job);
        this.finalize(job, 'failed', error.toShape());
        this.afterSettled();
      },
    );
  }

  /** After a job left the starting set: wakes shutdown when nothing is live, and starts the next job. */
  private afterSettled(): void {
    this.wakeIdle();
    this.pump();
  }

  private wakeIdle(): void {
    if (this.live.size === 0 && this.starting.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private startEngine(job: Job, workDir: string): void {
    try {
      this.history.markRunning(job.experimentId);
    } catch (e) {
      // A typed history error (a locked or full database) says what to do; the row is finished later.
      this.finalize(job, 'failed', toErrorShape(e));
      return;
    }
    this.emit('history.changed', { experimentId: job.experimentId });
    if (job.cache.answer) {
      this.answerFromCache(job);
      return;
    }

    let proc: EngineProcess;
    try {
      proc = this.host.spawn();
    } catch (e) {
      this.finalize(job, 'failed', { code: 'INTERNAL', message: `The engine process could not be started: ${toErrorShape(e).message}` });
      return;
    }
    job.process = proc;
    this.live.add(proc);
    proc.onOutput((stream, text) => this.onOutput(job, stream, text));
    proc.onMessage((m) => this.onEngineMessage(job, m));
    proc.onExit((code, signal) => this.onEngineExit(job, proc, code, signal));
    // A comparison measures the original again, beside the result (speed is only comparable when timed
    // in the same job): the cache never answers for part of a job.
    proc.send({ type: 'run', jobId: job.jobId, experimentId: job.experimentId, recipe: job.recipe, workDir });
  }

  private requestStop(job: Job, message: string, graceMs: number): void {
    if (job.cancelRequested) return;
    job.cancelRequested = true;
    job.cancelMessage = message;
    const proc = job.process;
    if (!proc) return;
    proc.send({ type: 'cancel' });
    if (job.killTimer) clearTimeout(job.killTimer);
    job.killTimer = setTimeout(() => {
      if (job.state === 'running') this.onLog(job, 'warn', `The engine did not stop within ${graceMs / 1000} s of being asked to; ending it.`);
      proc.kill();
    }, graceMs);
  }

  // ── engine messages ────────────────────────────────────────────────────────────────────────────────

  private onEngineMessage(job: Job, m: EngineToHost): void {
    if (job.state !== 'running') return;
    switch (m.type) {
      case 'progress': {
        const { overall, etaSeconds } = job.eta.update(m.phase, m.done, m.total, performance.now());
        const p: Progressless = {
          jobId: job.jobId, experimentId: job.experimentId, phase: m.phase, done: m.done, total: m.total, etaSeconds, message: m.message,
          overall, segments: job.segments,
        };
        job.progress = { ...p, seq: job.seq };
        job.coalescer.push(p);
        return;
      }
      case 'log':
        this.onLog(job, m.level, m.text);
        return;
      case 'point': {
        const point: SeriesPoint = { series: m.series, step: m.step, values: m.values };
        job.points.push(point);
        if (job.points.length > MAX_POINTS) job.points.splice(0, job.points.length - MAX_POINTS);
        job.pendingPoints.push(point);
        job.pointTimer ??= setTimeout(() => this.flushPoints(job), this.pointIntervalMs);
        return;
      }
      case 'result':
        // A result that arrives after a cancel was asked for is dropped: the user chose to stop.
        if (!job.cancelRequested) job.result = m;
        return;
      case 'done':
        if (job.cancelRequested) this.finalize(job, 'cancelled', cancelledError(job.cancelMessage));
        else if (!job.result) this.finalize(job, 'failed', { code: 'INTERNAL', message: 'The engine process finished without reporting a result.' });
        else this.finalize(job, 'done', null);
        return;
      case 'error':
        if (job.cancelRequested || m.error.code === 'CANCELLED') {
          this.finalize(job, 'cancelled', job.cancelRequested ? cancelledError(job.cancelMessage) : m.error);
        } else {
          this.finalize(job, 'failed', m.error);
        }
    }
  }

  private onEngineExit(job: Job, proc: EngineProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.live.delete(proc);
    if (job.killTimer) clearTimeout(job.killTimer);
    job.killTimer = null;
    if (job.state === 'running') {
      if (job.cancelRequested) this.finalize(job, 'cancelled', cancelledError(job.cancelMessage));
      else this.finalize(job, 'failed', unexpectedExitError(code, signal, job.stderr.toString()));
    }
    job.process = null;
    this.cleanOutput(job);
    this.wakeIdle();
    this.pump();
  }

  private onOutput(job: Job, stream: 'stdout' | 'stderr', text: string): void {
    if (stream === 'stderr') job.stderr.append(text);
    if (job.state !== 'running') return;
    for (const line of text.split(/\r?\n/)) {
      if (line.trim()) this.onLog(job, stream === 'stderr' ? 'warn' : 'debug', line);
    }
  }

  /** Sends the points not sent yet as one event (progress before them goes out first). */
  private flushPoints(job: Job): void {
    if (job.pointTimer) clearTimeout(job.pointTimer);
    job.pointTimer = null;
    if (job.pendingPoints.length === 0) return;
    const points = job.pendingPoints;
    job.pendingPoints = [];
    job.coalescer.flush();
    this.emit('job.points', { jobId: job.jobId, experimentId: job.experimentId, seq: ++job.seq, points });
  }

  private onLog(job: Job, level: LogLine['level'], text: string): void {
    // Points before the line go out first, so watchers see both in the order they happened.
    this.flushPoints(job);
    const time = new Date().toISOString();
    this.emit('job.log', { jobId: job.jobId, experimentId: job.experimentId, seq: ++job.seq, time, level, text });
    job.logs.push({ level, text, time });
    if (job.logs.length >= LOG_BATCH) this.flushLogs(job);
    else if (!job.logTimer) job.logTimer = setTimeout(() => this.flushLogs(job), this.logFlushMs);
  }

  private flushLogs(job: Job): void {
    if (job.logTimer) clearTimeout(job.logTimer);
    job.logTimer = null;
    if (job.logs.length === 0) return;
    const lines = job.logs;
    job.logs = [];
    try {
      this.history.appendLog(job.experimentId, lines);
    } catch (e) {
      console.error(`whittle: could not save log lines of experiment ${job.experimentId}: ${toErrorShape(e).message}`);
    }
  }

  private deliverProgress(job: Job, p: Progressless): void {
    const progress: JobProgress = { ...p, seq: ++job.seq };
    job.progress = progress;
    this.emit('job.progress', progress);
  }

  // ── the end of a job ───────────────────────────────────────────────────────────────────────────────

  /**
   * Records the end of an experiment whose first attempt failed (a locked or full database), retrying a
   * few times so its row is not left 'queued' or 'running'; the next start marks it interrupted otherwise.
   */
  private finishLater(experimentId: number, status: JobFinished['status'], error: ErrorShape | null, durationMs: number | null, attempt = 0): void {
    try {
      this.history.finish(experimentId, status, error, durationMs);
    } catch (e) {
      if (attempt >= FINISH_RETRIES || this.closed) {
        console.error(`whittle: experiment ${experimentId} could not be marked ${status}: ${toErrorShape(e).message}`);
        return;
      }
      setTimeout(() => this.finishLater(experimentId, status, error, durationMs, attempt + 1), FINISH_RETRY_MS).unref();
    }
  }

  private finalize(job: Job, status: JobFinished['status'], error: ErrorShape | null): void {
    if (job.state === 'finished') return;
    const ran = job.state === 'running';
    // The last progress and points go out before the end; nothing of this job is emitted after `job.finished`.
    this.flushPoints(job);
    job.coalescer.flush();
    job.state = 'finished';
    job.status = status;
    const durationMs = ran ? performance.now() - job.startedAt : null;
    const result = status === 'done' ? job.result : null;
    const cacheEntries = result ? this.cacheEntries(job, result) : [];
    if (result) this.addCacheDetails(job, result, cacheEntries);

    try {
      this.history.transaction(() => {
        this.flushLogs(job);
        if (result) {
          this.history.addMetrics(job.experimentId, result.metrics);
          this.history.addArtefacts(job.experimentId, result.artefacts);
          this.history.setDetails(job.experimentId, result.details);
          const written = (result.details.result as { sha256?: unknown } | undefined)?.sha256;
          if (typeof written === 'string') this.history.recordOutput(job.experimentId, written);
        }
        this.history.finish(job.experimentId, status, error, durationMs);
      });
    } catch (e) {
      console.error(`whittle: could not save the end of experiment ${job.experimentId}: ${toErrorShape(e).message}`);
      if (status === 'done') {
        status = 'failed';
        error = { code: 'IO', message: `The job finished but its results could not be saved to the history: ${toErrorShape(e).message}` };
      }
      this.finishLater(job.experimentId, status, error, durationMs);
    }

    if (status === 'done' && result) {
      try {
        for (const e of cacheEntries) this.evaluations?.store(e.key, e.metrics, job.experimentId);
      } catch (e) {
        // The results are saved; only a later repeat of this evaluation will not be spared.
        console.error(`whittle: could not store the evaluation of experiment ${job.experimentId} in the cache: ${toErrorShape(e).message}`);
      }
      this.emit('job.result', {
        jobId: job.jobId, experimentId: job.experimentId, seq: ++job.seq,
        metrics: result.metrics, artefacts: result.artefacts, details: result.details,
      });
    }
    const finished: JobFinished = { jobId: job.jobId, experimentId: job.experimentId, seq: ++job.seq, status, error };
    this.emit('job.finished', finished);
    this.emit('history.changed', { experimentId: job.experimentId });

    this.jobs.delete(job.jobId);
    if (!job.process) this.cleanOutput(job);
    this.recentlyFinished.set(job.jobId, finished);
    if (this.recentlyFinished.size > RECENT_FINISHED) this.recentlyFinished.delete(this.recentlyFinished.keys().next().value!);

    // The engine exits by itself after its last message; make sure it does.
    const proc = job.process;
    if (proc && this.live.has(proc) && !job.killTimer) job.killTimer = setTimeout(() => proc.kill(), this.cancelGraceMs);
    job.resolveFinished(finished);
  }

  /**
   * After a job that did not succeed, once its engine is gone: nothing that looks like output stays
   * (partial folders beside the output, an empty job folder).
   */
  private cleanOutput(job: Job): void {
    if (job.status === null || job.status === 'done' || !job.workDir) return;
    try {
      cleanFailedJobOutput(job.workDir, job.recipe.output?.dir);
    } catch (e) {
      console.error(`whittle: could not clean the output of experiment ${job.experimentId}:`, e);
    }
  }

  /** The models compared (compression) and the cache entries stored, in the result's details. */
  private addCacheDetails(job: Job, result: EngineResult, entries: { key: CacheKey; subject: string }[]): void {
    const { model, settings } = job.cache;
    if (job.recipe.steps.length > 0 && model) result.details.original = { path: model.path, sha256: model.sha256, contentSha256: model.contentSha256 };
    if (settings === null || job.cache.answer) return;
    const stored: StoredEntry[] = entries.map((e) => ({ subject: e.subject, model: e.key.model, settings: e.key.settings }));
    result.details.evaluationCache = { settings, stored, read: job.recipe.evaluation.cache !== false };
  }

  private emit<E extends EventName>(channel: E, payload: EventPayloads[E]): void {
    try {
      this.emitTo(channel, payload);
    } catch (e) {
      console.error(`whittle: a listener of ${channel} failed:`, e);
    }
  }
}
