/**
 * Sweeps through the real job service: engine processes, the stories260K model, a history file. A grid
 * of RTN bits × block size makes one group of four experiments run one after another; invalid
 * combinations are refused before anything is recorded; a sweep cut short by a shutdown is resumed by a
 * later service on the same history.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { resumeSweep, startSweep, sweepView } from '../../main/jobs/sweep.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

/** RTN with the cheap footprint evaluation only: each member is a short engine run. */
const base: RecipeInput = {
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
  evaluation: { footprint: true },
};

let scratch: ReturnType<typeof tempDir>;
let history: History;
let jobs: JobService;

function service(h: History): JobService {
  return new JobService({ history: h, host: new ChildProcessHost(WORKER), outputRoot: path.join(scratch.dir, 'outputs'), emit: () => {} });
}

beforeEach(() => {
  scratch = tempDir('whittle-sweep-');
  history = openHistory({ home: scratch.dir });
  jobs = service(history);
});

afterEach(async () => {
  await jobs.shutdown();
  history.close();
  scratch.cleanup();
});

describe('sweeps', () => {
  it('a 2 × 2 grid makes one group of four experiments, run one after another', async () => {
    const started = await startSweep({ history, jobs }, { recipe: base, grid: { 'steps.0.bits': [4, 8], 'steps.0.blockSize': [32, 128] } });
    expect(started.jobs).toHaveLength(4);
    const finished = await Promise.all(started.jobs.map((j) => jobs.whenFinished(j.jobId)));
    expect(finished.map((f) => f.status)).toEqual(['done', 'done', 'done', 'done']);

    const view = sweepView(history, started.groupId);
    expect(view.size).toBe(4);
    expect(view.remaining).toBe(0);
    expect(view.counts).toEqual({ done: 4 });
    expect(view.name).toBe('Sweep bits × blockSize · stories260K-kv');
    expect(view.members.map((m) => m.id)).toEqual(started.jobs.map((j) => j.experimentId));
    expect(view.members.map((m) => m.assignment)).toEqual([
      { 'steps.0.bits': 4, 'steps.0.blockSize': 32 },
      { 'steps.0.bits': 4, 'steps.0.blockSize': 128 },
      { 'steps.0.bits': 8, 'steps.0.blockSize': 32 },
      { 'steps.0.bits': 8, 'steps.0.blockSize': 128 },
    ]);
    // Named by method and bits; each member's folder follows its name.
    expect(view.members.map((m) => m.name)).toEqual([
      'RTN 4-bit g32 · stories260K-kv', 'RTN 4-bit g128 · stories260K-kv', 'RTN 8-bit g32 · stories260K-kv', 'RTN 8-bit g128 · stories260K-kv',
    ]);
    for (const m of view.members) expect(existsSync(path.join(scratch.dir, 'outputs', `${m.id}-${m.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`))).toBe(true);

    // One after another: no member started before the one before it finished.
    const rows = history.db.prepare<{ started: string; finished: string }>(`SELECT started, finished FROM experiments WHERE group_id = ? ORDER BY id`).all(started.groupId);
    for (let i = 1; i < rows.length; i++) expect(rows[i].started >= rows[i - 1].finished).toBe(true);

    // The recipes differ exactly by the grid: 4-bit results are smaller than 8-bit ones at the same block size.
    const size = (id: number) => history.get(id).metrics.find((m) => m.name === 'bytes_on_disk' && m.subject === 'result')!.value;
    const [b4g32, , b8g32] = view.members.map((m) => m.id);
    expect(size(b4g32)).toBeLessThan(size(b8g32));
  });

  it('runs a sweep one job at a time even when the service runs several jobs at once', async () => {
    await jobs.shutdown();
    jobs = new JobService({ history, host: new ChildProcessHost(WORKER), outputRoot: path.join(scratch.dir, 'outputs'), emit: () => {}, concurrency: 3 });
    const started = await startSweep({ history, jobs }, { recipe: base, grid: { 'steps.0.blockSize': [32, 64, 128] } });
    // A job outside the sweep is not held back by it.
    const other = await jobs.start({ ...base, steps: [{ type: 'quantize', method: 'rtn', bits: 8 }] }, 'beside the sweep');
    await Promise.all([...started.jobs, other].map((j) => jobs.whenFinished(j.jobId)));
    const rows = history.db.prepare<{ id: number; started: string; finished: string }>(`SELECT id, started, finished FROM experiments ORDER BY id`).all();
    const sweep = rows.filter((r) => started.jobs.some((j) => j.experimentId === r.id));
    for (let i = 1; i < sweep.length; i++) expect(sweep[i].started >= sweep[i - 1].finished).toBe(true);
    const beside = rows.find((r) => r.id === other.experimentId)!;
    expect(beside.started < sweep[1].started).toBe(true);
  });

  it('reports every invalid combination before anything is recorded', async () => {
    let error: unknown;
    try {
      await startSweep({ history, jobs }, { recipe: base, grid: { 'steps.0.bits': [3, 4, 5], 'steps.0.blockSize': [32, 48] } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WhittleError);
    const e = error as WhittleError;
    expect(e.code).toBe('INVALID_INPUT');
    // 6 combinations, of which only bits=4 with blockSize=32 is valid.
    expect(e.message).toMatch(/^5 of the sweep's 6 combinations are not valid recipes; nothing was started/);
    expect(e.message).toContain('bits=3, blockSize=32');
    expect(e.message).toContain('bits=4, blockSize=48: steps.0.blockSize: block size must be a power of two');
    expect(history.db.prepare<number>(`SELECT COUNT(*) FROM experiments`).pluck().get()).toBe(0);
    expect(history.db.prepare<number>(`SELECT COUNT(*) FROM experiment_groups`).pluck().get()).toBe(0);

    await expect(startSweep({ history, jobs }, { recipe: base, grid: { 'steps.1.bits': [4] } })).rejects.toThrow(/steps has 1 entry, so there is no 1/);
    await expect(startSweep({ history, jobs }, { recipe: { ...base, model: { path: path.join(scratch.dir, 'none.onnx') } }, grid: { 'steps.0.bits': [4, 8] } }))
      .rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(history.db.prepare<number>(`SELECT COUNT(*) FROM experiment_groups`).pluck().get()).toBe(0);
  });

  it('resumes after a restart: the members that did not finish are queued again in the same group', async () => {
    const started = await startSweep({ history, jobs }, { recipe: base, grid: { 'steps.0.bits': [4, 8], 'steps.0.blockSize': [32, 64] } });
    // The first member finishes; Whittle stops while the rest wait in the queue.
    expect((await jobs.whenFinished(started.jobs[0].jobId)).status).toBe('done');
    await jobs.shutdown();
    history.close();

    history = openHistory({ home: scratch.dir });
    jobs = service(history);
    const before = sweepView(history, started.groupId);
    expect(before.counts.done).toBeGreaterThanOrEqual(1);
    expect(before.remaining).toBe(4 - (before.counts.done ?? 0));

    const resumed = await resumeSweep({ history, jobs }, started.groupId);
    expect(resumed.jobs).toHaveLength(before.remaining);
    const finished = await Promise.all(resumed.jobs.map((j) => jobs.whenFinished(j.jobId)));
    expect(finished.every((f) => f.status === 'done')).toBe(true);

    const after = sweepView(history, started.groupId);
    expect(after.remaining).toBe(0);
    expect(after.counts.done).toBe(4);
    // Every combination is done exactly once.
    const done = after.members.filter((m) => m.status === 'done').map((m) => JSON.stringify(m.assignment)).sort();
    expect(new Set(done).size).toBe(4);
    expect((await resumeSweep({ history, jobs }, started.groupId)).jobs).toHaveLength(0);
  });
});
