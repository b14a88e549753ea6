/**
 * The job system with the real engine worker (main/jobs/engine-worker.ts forked by Node), a real
 * evaluation of the stories260K model and a real history file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads, JobFinished, RecipeInput } from '../../preload/contract.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

/** Small and fast: 20 documents of at most 64 tokens. */
const quick: RecipeInput = {
  name: 'stories quick',
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, window: 64, maxSamples: 20 }, footprint: true },
};

/** Long enough that it is still evaluating when the test interferes (it is never run to the end). */
const long: RecipeInput = {
  name: 'stories long',
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, window: 256, maxSamples: 1000 } },
};

type Event = { [E in EventName]: { channel: E; payload: EventPayloads[E] } }[EventName];

let scratch: ReturnType<typeof tempDir>;
let history: History;
let events: Event[];
let listeners: ((e: Event) => void)[];
let jobs: JobService;

beforeEach(() => {
  scratch = tempDir('whittle-jobs-');
  history = openHistory({ home: scratch.dir });
  events = [];
  listeners = [];
  jobs = new JobService({
    history,
    host: new ChildProcessHost(WORKER),
    outputRoot: path.join(scratch.dir, 'outputs'),
    emit: (channel, payload) => {
      const e = { channel, payload } as Event;
      events.push(e);
      for (const l of listeners) l(e);
    },
  });
});

afterEach(async () => {
  await jobs.shutdown();
  history.close();
  scratch.cleanup();
});

function jobEvents(jobId: string): Event[] {
  return events.filter((e) => e.channel !== 'history.changed' && e.payload.jobId === jobId);
}

/** Settles a little after the job finished, so that anything emitted late would be seen. */
async function finished(jobId: string): Promise<JobFinished> {
  const f = await jobs.whenFinished(jobId);
  await new Promise((r) => setTimeout(r, 300));
  return f;
}

function expectWellOrdered(jobId: string, atLeast = 2): void {
  const list = jobEvents(jobId);
  expect(list.length).toBeGreaterThanOrEqual(atLeast);
  list.forEach((e, i) => expect((e.payload as { seq: number }).seq, `event ${i} (${e.channel})`).toBe(i + 1));
  expect(list.at(-1)!.channel).toBe('job.finished');
  expect(list.filter((e) => e.channel === 'job.finished')).toHaveLength(1);
}

describe('JobService with the real engine process', () => {
  it('runs an evaluation: ordered events, finished last, metrics and log in the history', async () => {
    const { jobId, experimentId } = await jobs.start(quick);
    expect(jobs.list()).toEqual([{ jobId, experimentId, name: 'stories quick', status: 'queued', progress: null }]);
    expect(history.get(experimentId).status).toBe('queued');

    const f = await finished(jobId);
    expect(f).toEqual({ jobId, experimentId, seq: expect.any(Number), status: 'done', error: null });
    expectWellOrdered(jobId);

    const list = jobEvents(jobId);
    const result = list.filter((e) => e.channel === 'job.result');
    expect(result).toHaveLength(1);
    expect(list.at(-2)!.channel).toBe('job.result');
    const progress = list.flatMap((e) => (e.channel === 'job.progress' ? [e.payload] : []));
    expect(progress.some((p) => p.phase === 'evaluate:perplexity')).toBe(true);
    const lastPerplexity = progress.filter((p) => p.phase === 'evaluate:perplexity').at(-1)!;
    expect(lastPerplexity.done).toBe(lastPerplexity.total);
    expect(list.some((e) => e.channel === 'job.log')).toBe(true);

    const d = history.get(experimentId);
    expect(d.status).toBe('done');
    expect(d.error).toBeNull();
    expect(d.durationMs).toBeGreaterThan(0);
    expect(d.kind).toBe('evaluate');
    expect(d.recipe).toEqual(quick);
    expect(d.modelBytes).toBe(readFileSync(STORIES.model).length);
    expect(d.modelSha256).toBe(createHash('sha256').update(readFileSync(STORIES.model)).digest('hex'));
    const ppl = d.metrics.find((m) => m.name === 'perplexity' && m.subject === 'model');
    expect(ppl).toBeDefined();
    expect(ppl!.value).toBeGreaterThan(1);
    expect(ppl!.value).toBeLessThan(20);
    expect(d.metrics).toEqual(result[0].channel === 'job.result' ? result[0].payload.metrics : []);
    expect(d.headline[0]).toEqual(ppl);
    expect(d.log.map((l) => l.text)).toEqual(list.flatMap((e) => (e.channel === 'job.log' ? [e.payload.text] : [])));
    expect(d.details).toMatchObject({ evaluation: { model: expect.any(Object) } });
    expect(existsSync(path.join(scratch.dir, 'outputs', `${experimentId}-stories-quick`))).toBe(true);
    expect(jobs.list()).toEqual([]);
    expect(events.filter((e) => e.channel === 'history.changed').every((e) => e.payload.experimentId === experimentId)).toBe(true);
  });

  it('cancels a running job: status cancelled, no result, the evaluation stopped part-way', async () => {
    const { jobId, experimentId } = await jobs.start(long);
    let cancelled: boolean | undefined;
    listeners.push((e) => {
      if (cancelled === undefined && e.channel === 'job.progress' && e.payload.jobId === jobId && e.payload.phase === 'evaluate:perplexity' && e.payload.done > 0) {
        expect(jobs.list()[0]).toMatchObject({ jobId, status: 'running', progress: { phase: 'evaluate:perplexity' } });
        cancelled = jobs.cancel(jobId);
      }
    });
    const f = await finished(jobId);
    expect(cancelled).toBe(true);
    expect(f.status).toBe('cancelled');
    expect(f.error?.code).toBe('CANCELLED');
    expectWellOrdered(jobId);
    expect(jobEvents(jobId).some((e) => e.channel === 'job.result')).toBe(false);
    const last = jobEvents(jobId).flatMap((e) => (e.channel === 'job.progress' ? [e.payload] : [])).at(-1)!;
    expect(last.done).toBeLessThan(last.total);

    const d = history.get(experimentId);
    expect(d.status).toBe('cancelled');
    expect(d.metrics).toEqual([]);
    expect(d.error?.code).toBe('CANCELLED');
    // The engine stopped by itself (it was not killed after the grace period).
    expect(d.log.some((l) => /did not stop/.test(l.text))).toBe(false);
    expect(jobs.cancel(jobId)).toBe(false);
  });

  it('cancels a queued job before it starts', async () => {
    const first = await jobs.start(long);
    const second = await jobs.start(quick);
    expect(jobs.list().map((j) => j.jobId)).toEqual([first.jobId, second.jobId]);
    expect(jobs.list()[1].status).toBe('queued');
    expect(jobs.cancel(second.jobId)).toBe(true);
    const f = await jobs.whenFinished(second.jobId);
    expect(f).toMatchObject({ status: 'cancelled', seq: 1, error: { code: 'CANCELLED' } });
    expect(history.get(second.experimentId).status).toBe('cancelled');
    expect(jobs.list().map((j) => j.jobId)).toEqual([first.jobId]);
    expect(jobs.cancel(first.jobId)).toBe(true);
    expect((await jobs.whenFinished(first.jobId)).status).toBe('cancelled');
  });

  it('fails a job whose engine process is killed, then runs the next queued job', async () => {
    const doomed = await jobs.start(long);
    const next = await jobs.start(quick, 'after the crash');
    let killed: number | undefined;
    listeners.push((e) => {
      if (killed === undefined && e.channel === 'job.progress' && e.payload.jobId === doomed.jobId) {
        killed = jobs.enginePid(doomed.jobId);
        expect(killed).toBeGreaterThan(0);
        process.kill(killed!, 'SIGKILL');
      }
    });
    const f = await finished(doomed.jobId);
    expect(killed).toBeDefined();
    expect(f.status).toBe('failed');
    expect(['INTERNAL', 'OUT_OF_MEMORY']).toContain(f.error?.code);
    expect(f.error?.message).toMatch(/^The engine process stopped unexpectedly \(signal SIGKILL\)/);
    expectWellOrdered(doomed.jobId);
    expect(jobEvents(doomed.jobId).some((e) => e.channel === 'job.result')).toBe(false);
    const d = history.get(doomed.experimentId);
    expect(d.status).toBe('failed');
    expect(d.error?.message).toMatch(/signal SIGKILL/);
    expect(d.metrics).toEqual([]);

    const g = await finished(next.jobId);
    expect(g.status).toBe('done');
    expectWellOrdered(next.jobId);
    expect(history.get(next.experimentId).metrics.some((m) => m.name === 'perplexity')).toBe(true);
  });

  it('rejects an invalid recipe before anything is queued or recorded', async () => {
    const bad = { ...quick, evaluation: { perplexity: { text: STORIES.text, windw: 64 } } };
    const e = await jobs.start(bad).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect((e as WhittleError).code).toBe('INVALID_INPUT');
    expect((e as WhittleError).message).toBe('The recipe is not valid: evaluation.perplexity: Unrecognized key: "windw"');
    const missing = await jobs.start({ ...quick, model: { path: path.join(scratch.dir, 'nope.onnx') } }).then(() => null, (x: unknown) => x);
    expect((missing as WhittleError).code).toBe('NOT_FOUND');
    expect(history.list().total).toBe(0);
    expect(jobs.list()).toEqual([]);
    expect(events).toEqual([]);
  });

  it('reports an engine-side error (a tokenizer that does not exist) as a failed job with that error', async () => {
    const { jobId, experimentId } = await jobs.start({ ...quick, tokenizer: { path: path.join(scratch.dir, 'missing-tokenizer.json') } });
    const f = await finished(jobId);
    expect(f.status).toBe('failed');
    expect(f.error?.code).not.toBe('INTERNAL');
    expect(f.error?.message).toMatch(/missing-tokenizer\.json/);
    // The tokenizer is checked before any work, so the job may end before its first progress event.
    expectWellOrdered(jobId, 1);
    expect(history.get(experimentId)).toMatchObject({ status: 'failed', error: f.error });
  });
});
