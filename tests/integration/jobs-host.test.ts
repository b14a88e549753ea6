/**
 * The job service's handling of engine processes that misbehave: ignoring a cancel, sending garbage,
 * dying after the result, running out of memory. The engines here are small scripts speaking the real
 * protocol over a real child process (the real engine cannot be made to misbehave on purpose); the
 * service, the host and the history are the product's own.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads } from '../../preload/contract.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { tempDir } from '../helpers/fixtures.ts';

/** Behaviour chosen by the recipe's name. */
const SCRIPTED_ENGINE = `
const send = (m) => new Promise((r) => process.send(m, undefined, {}, r));
process.on('message', async (m) => {
  if (m.type !== 'run') return;
  const behaviour = m.recipe.name;
  await send({ type: 'progress', phase: 'work', done: 0, total: 10, message: '' });
  switch (behaviour) {
    case 'stubborn':            // never stops, ignores cancel
      setInterval(() => {}, 1000);
      return;
    case 'garbage':
      await send({ type: 'progress', phase: 'work', done: 'lots' });
      setInterval(() => {}, 1000);
      return;
    case 'no-done':             // dies between the result and 'done'
      await send({ type: 'result', metrics: [{ name: 'x', value: 1, unit: '', subject: 'model' }], artefacts: [], details: {} });
      process.exit(0);
    case 'oom':
      process.stderr.write('\\n<--- Last few GCs --->\\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\\n');
      setTimeout(() => process.exit(134), 20);
      return;
    case 'ok': {
      for (let i = 1; i <= 10; i++) await send({ type: 'progress', phase: 'work', done: i, total: 10, message: '' });
      await send({ type: 'log', level: 'info', text: 'worked in ' + m.workDir });
      await send({ type: 'result', metrics: [{ name: 'perplexity', value: Infinity, unit: '', subject: 'model' }], artefacts: [{ kind: 'folder', path: m.workDir, bytes: null }], details: { pid: process.pid } });
      await send({ type: 'done' });
      process.exit(0);
    }
    case 'wait-for-cancel':     // a cooperative engine that stops when asked
      process.on('message', async (c) => {
        if (c.type === 'cancel') { await send({ type: 'error', error: { code: 'CANCELLED', message: 'stopped' } }); process.exit(0); }
      });
      setInterval(() => {}, 1000);
      return;
  }
});
`;

type Event = { [E in EventName]: { channel: E; payload: EventPayloads[E] } }[EventName];

let scratch: ReturnType<typeof tempDir>;
let history: History;
let events: Event[];
let model: string;

function service(options: { concurrency?: number; cancelGraceMs?: number } = {}): JobService {
  const worker = path.join(scratch.dir, 'scripted-engine.cjs');
  writeFileSync(worker, SCRIPTED_ENGINE);
  return new JobService({
    history,
    host: new ChildProcessHost(worker),
    outputRoot: path.join(scratch.dir, 'outputs'),
    emit: (channel, payload) => { events.push({ channel, payload } as Event); },
    ...options,
  });
}

const recipe = (name: string) => ({ name, model: { path: model } });

beforeEach(() => {
  scratch = tempDir('whittle-jobs-host-');
  history = openHistory({ home: scratch.dir });
  events = [];
  model = path.join(scratch.dir, 'model.onnx');
  writeFileSync(model, Buffer.alloc(1000, 1));
});

afterEach(() => {
  history.close();
  scratch.cleanup();
});

function seqs(jobId: string): number[] {
  return events.flatMap((e) => (e.channel !== 'history.changed' && e.payload.jobId === jobId ? [e.payload.seq] : []));
}

describe('JobService and misbehaving engine processes', () => {
  it('kills an engine that ignores a cancel after the grace period; the job is cancelled', async () => {
    const jobs = service({ cancelGraceMs: 200 });
    const { jobId, experimentId } = await jobs.start(recipe('stubborn'));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => { if (jobs.list()[0]?.progress) { clearInterval(t); resolve(); } }, 10);
    });
    expect(jobs.cancel(jobId)).toBe(true);
    const f = await jobs.whenFinished(jobId);
    expect(f).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED', message: 'The job was cancelled.' } });
    const d = history.get(experimentId);
    expect(d.status).toBe('cancelled');
    expect(d.log.map((l) => l.text)).toContain('The engine did not stop within 0.2 s of being asked to; ending it.');
    await jobs.shutdown();
  });

  it('fails a job whose engine sends a malformed message', async () => {
    const jobs = service({ cancelGraceMs: 200 });
    const { jobId, experimentId } = await jobs.start(recipe('garbage'));
    const f = await jobs.whenFinished(jobId);
    expect(f.status).toBe('failed');
    expect(f.error?.code).toBe('INTERNAL');
    expect(f.error?.message).toMatch(/^The engine process sent an invalid message \(/);
    expect(history.get(experimentId).status).toBe('failed');
    await jobs.shutdown();
  });

  it('does not present a result as finished when the engine dies before confirming it', async () => {
    const jobs = service();
    const { jobId, experimentId } = await jobs.start(recipe('no-done'));
    const f = await jobs.whenFinished(jobId);
    expect(f.status).toBe('failed');
    expect(f.error?.message).toMatch(/^The engine process stopped unexpectedly \(exit code 0\)/);
    expect(events.some((e) => e.channel === 'job.result')).toBe(false);
    expect(history.get(experimentId).metrics).toEqual([]);
    await jobs.shutdown();
  });

  it('recognises an engine that ran out of memory', async () => {
    const jobs = service();
    const { jobId, experimentId } = await jobs.start(recipe('oom'));
    const f = await jobs.whenFinished(jobId);
    expect(f.status).toBe('failed');
    expect(f.error?.code).toBe('OUT_OF_MEMORY');
    expect(f.error?.message).toMatch(/^The engine process stopped unexpectedly \(exit code 134\): it ran out of memory\./);
    const d = history.get(experimentId);
    expect(d.error?.code).toBe('OUT_OF_MEMORY');
    expect(d.log.some((l) => l.level === 'warn' && /heap out of memory/.test(l.text))).toBe(true);
    await jobs.shutdown();
  });

  it('runs jobs one at a time by default, each in its own process, in order', async () => {
    const jobs = service();
    const a = await jobs.start(recipe('ok'), 'first');
    const b = await jobs.start(recipe('ok'), 'second');
    const [fa, fb] = await Promise.all([jobs.whenFinished(a.jobId), jobs.whenFinished(b.jobId)]);
    expect([fa.status, fb.status]).toEqual(['done', 'done']);
    const finishedOrder = events.flatMap((e) => (e.channel === 'job.finished' ? [e.payload.jobId] : []));
    expect(finishedOrder).toEqual([a.jobId, b.jobId]);
    // b's first event came after a finished: never two at once.
    const firstOfB = events.findIndex((e) => e.channel !== 'history.changed' && e.payload.jobId === b.jobId);
    const endOfA = events.findIndex((e) => e.channel === 'job.finished' && e.payload.jobId === a.jobId);
    expect(firstOfB).toBeGreaterThan(endOfA);
    for (const id of [a.jobId, b.jobId]) expect(seqs(id)).toEqual(seqs(id).map((_, i) => i + 1));
    const da = history.get(a.experimentId);
    const db = history.get(b.experimentId);
    expect(da.metrics).toEqual([{ name: 'perplexity', value: Number.POSITIVE_INFINITY, unit: '', subject: 'model' }]);
    expect(da.artefacts).toEqual([{ kind: 'folder', path: path.join(scratch.dir, 'outputs', `${a.experimentId}-first`), bytes: null }]);
    expect(da.details.pid).not.toBe(db.details.pid);
    expect(da.log.map((l) => l.text)).toEqual([`worked in ${path.join(scratch.dir, 'outputs', `${a.experimentId}-first`)}`]);
    await jobs.shutdown();
  });

  it('runs jobs side by side with concurrency 2', async () => {
    const jobs = service({ concurrency: 2 });
    const a = await jobs.start(recipe('wait-for-cancel'));
    const b = await jobs.start(recipe('wait-for-cancel'));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => { if (jobs.list().filter((j) => j.progress).length === 2) { clearInterval(t); resolve(); } }, 10);
    });
    expect(jobs.list().map((j) => j.status)).toEqual(['running', 'running']);
    expect(jobs.enginePid(a.jobId)).not.toBe(jobs.enginePid(b.jobId));
    expect(jobs.cancel(a.jobId)).toBe(true);
    expect(jobs.cancel(b.jobId)).toBe(true);
    expect((await jobs.whenFinished(a.jobId)).status).toBe('cancelled');
    expect((await jobs.whenFinished(b.jobId)).status).toBe('cancelled');
    // Cooperative engines stop by themselves: nothing was killed.
    expect(history.get(a.experimentId).log).toEqual([]);
    await jobs.shutdown();
  });

  it('fails the job, with what the process printed, when the engine cannot start', async () => {
    const jobs = new JobService({
      history,
      host: new ChildProcessHost(path.join(scratch.dir, 'no-such-engine.cjs')),
      outputRoot: path.join(scratch.dir, 'outputs'),
      emit: (channel, payload) => { events.push({ channel, payload } as Event); },
    });
    const { jobId } = await jobs.start(recipe('ok'));
    const f = await jobs.whenFinished(jobId);
    expect(f.status).toBe('failed');
    expect(f.error?.message).toMatch(/^The engine process stopped unexpectedly \(exit code 1\)/);
    expect(f.error?.details?.stderr).toMatch(/Cannot find module/);
    await jobs.shutdown();
  });

  it('shutdown stops running jobs, cancels queued ones and refuses new ones', async () => {
    const jobs = service({ cancelGraceMs: 5000 });
    const running = await jobs.start(recipe('stubborn'));
    const queued = await jobs.start(recipe('ok'));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => { if (jobs.list()[0]?.progress) { clearInterval(t); resolve(); } }, 10);
    });
    const pid = jobs.enginePid(running.jobId)!;
    await jobs.shutdown(100);
    expect(() => process.kill(pid, 0)).toThrow();                  // the engine process is gone
    expect(history.get(running.experimentId)).toMatchObject({ status: 'cancelled', error: { message: 'Whittle was shut down while this job was running.' } });
    expect(history.get(queued.experimentId)).toMatchObject({ status: 'cancelled', error: { message: 'Whittle was shut down before this job started.' } });
    await expect(jobs.start(recipe('ok'))).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
