import { describe, expect, it } from 'vitest';
import type { EventName, EventPayloads, JobInfo, WhittleApi } from '../../../preload/contract.ts';
import { createJobStore } from '../../../renderer/lib/job-store.ts';
import { applyJobEvent, initialJobState, jobPhase, LOG_TAIL, phaseLabel, progressBar, withEarlierLog } from '../../../renderer/lib/job-state.ts';

const progress = (seq: number, done: number, jobId = 'j1') => ({ jobId, experimentId: 5, seq, phase: 'perplexity', done, total: 400, etaSeconds: 3, message: '' });

describe('one job folded from its events', () => {
  it('ignores other jobs and stale progress', () => {
    let s = initialJobState('j1');
    expect(jobPhase(s)).toBe('starting');
    s = applyJobEvent(s, { channel: 'job.progress', payload: progress(3, 30) });
    expect(s.experimentId).toBe(5);
    expect(jobPhase(s)).toBe('running');
    const same = applyJobEvent(s, { channel: 'job.progress', payload: progress(2, 20) });
    expect(same).toBe(s);
    expect(applyJobEvent(s, { channel: 'job.progress', payload: progress(9, 90, 'other') })).toBe(s);
    s = applyJobEvent(s, { channel: 'job.finished', payload: { jobId: 'j1', experimentId: 5, seq: 10, status: 'cancelled', error: null } });
    expect(jobPhase(s)).toBe('cancelled');
    expect(applyJobEvent(s, { channel: 'job.progress', payload: progress(11, 100) })).toBe(s);
  });

  it('shows a line once when it arrives live and again from the history under another number', () => {
    const time = new Date(1_700_000_000_000).toISOString();
    let s = initialJobState('j1', 5);
    // Live events carry the job's event sequence; the history numbers log lines on their own.
    s = applyJobEvent(s, { channel: 'job.log', payload: { jobId: 'j1', experimentId: 5, seq: 7, time, level: 'info', text: 'model: perplexity' } });
    s = withEarlierLog(s, [{ seq: 1, time, level: 'info', text: 'model: perplexity' }, { seq: 2, time: new Date(1_700_000_000_500).toISOString(), level: 'info', text: 'another line' }]);
    expect(s.log.map((l) => l.text)).toEqual(['model: perplexity', 'another line']);
  });

  it('words phases for the progress line', () => {
    expect(phaseLabel('evaluate:perplexity')).toBe('Evaluate · perplexity');
    expect(phaseLabel('loading_model')).toBe('Loading model');
  });

  it('keeps the log in order, without duplicates, and only its tail', () => {
    let s = initialJobState('j1', 5);
    const line = (seq: number) => ({ jobId: 'j1', experimentId: 5, seq, time: new Date(1_700_000_000_000 + seq).toISOString(), level: 'info' as const, text: `line ${seq}` });
    s = applyJobEvent(s, { channel: 'job.log', payload: line(2) });
    s = applyJobEvent(s, { channel: 'job.log', payload: line(1) });
    s = applyJobEvent(s, { channel: 'job.log', payload: line(2) });
    expect(s.log.map((l) => l.seq)).toEqual([1, 2]);
    for (let i = 3; i < LOG_TAIL + 50; i++) s = applyJobEvent(s, { channel: 'job.log', payload: line(i) });
    expect(s.log).toHaveLength(LOG_TAIL);
    expect(s.log[s.log.length - 1].seq).toBe(LOG_TAIL + 49);
  });
});

/** A tiny event source with the contract's `on` (the store only listens). */
function eventSource() {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const api: Pick<WhittleApi, 'on'> = {
    on(channel, listener) {
      const set = listeners.get(channel) ?? new Set();
      listeners.set(channel, set);
      set.add(listener as (p: unknown) => void);
      return () => set.delete(listener as (p: unknown) => void);
    },
  };
  const emit = <E extends EventName>(channel: E, payload: EventPayloads[E]) => listeners.get(channel)?.forEach((l) => l(payload));
  return { api, emit, count: () => [...listeners.values()].reduce((n, s) => n + s.size, 0) };
}

describe('the job store', () => {
  it('buffers events that arrive before a page attaches, and tracks what runs', () => {
    const src = eventSource();
    const store = createJobStore(src.api);
    let changes = 0;
    store.subscribe(() => { changes += 1; });
    src.emit('job.progress', progress(1, 10, 'early'));
    src.emit('job.result', { jobId: 'early', experimentId: 5, seq: 2, metrics: [{ name: 'perplexity', value: 4.2, unit: '', subject: 'model' }], artefacts: [], details: {} });
    expect(store.running().map((s) => s.jobId)).toEqual(['early']);
    src.emit('job.finished', { jobId: 'early', experimentId: 5, seq: 3, status: 'done', error: null });
    const s = store.get('early')!;
    expect(jobPhase(s)).toBe('done');
    expect(s.result?.metrics[0].value).toBe(4.2);
    expect(store.running()).toEqual([]);
    expect(changes).toBe(3);
    store.dispose();
    expect(src.count()).toBe(0);
  });

  it('seeds running jobs from jobs.list and settles finished ones from the history', () => {
    const store = createJobStore(eventSource().api);
    const info: JobInfo = { jobId: 'r', experimentId: 9, name: 'x', status: 'running', progress: progress(4, 40, 'r') };
    store.seedRunning([info]);
    expect(store.get('r')?.progress?.done).toBe(40);
    store.settle('r', {
      id: 9, name: 'x', kind: 'evaluate', status: 'failed', created: '', finished: '', modelPath: '/m', modelBytes: 1, headline: [], starred: false, pinned: false,
      recipe: {}, modelSha256: null, durationMs: 1, error: { code: 'IO', message: 'disk full' }, metrics: [], artefacts: [],
      log: [{ seq: 1, time: '2025-01-01T00:00:00.000Z', level: 'error', text: 'disk full' }], tags: [], notes: '', details: {},
    });
    const s = store.get('r')!;
    expect(jobPhase(s)).toBe('failed');
    expect(s.finished?.error?.message).toBe('disk full');
    expect(s.log.map((l) => l.text)).toEqual(['disk full']);
    expect(s.interrupted).toBe(false);
  });

  it('marks a job the app stopped under as interrupted, without inventing an error', () => {
    const store = createJobStore(eventSource().api);
    store.track('i', 3);
    store.settle('i', {
      id: 3, name: 'x', kind: 'evaluate', status: 'interrupted', created: '', finished: null, modelPath: '/m', modelBytes: 1, headline: [], starred: false, pinned: false,
      recipe: {}, modelSha256: null, durationMs: null, error: null, metrics: [], artefacts: [], log: [], tags: [], notes: '', details: {},
    });
    const s = store.get('i')!;
    expect(s.interrupted).toBe(true);
    expect(s.finished).toMatchObject({ status: 'failed', error: null });
    expect(store.running()).toEqual([]);
  });
});

describe('the job progress bar', () => {
  const base = { jobId: 'j', experimentId: 1, seq: 1, etaSeconds: null, message: '' };
  const segments = [{ phase: 'load', share: 0.1 }, { phase: 'quantize', share: 0.3 }, { phase: 'evaluate:compare', share: 0.6 }];

  it('is one bar for the whole job, the phases as segments filled as far as the job has got', () => {
    const bar = progressBar({ ...base, phase: 'quantize', done: 5, total: 10, overall: 0.25, segments }, false);
    expect(bar.percent).toBeCloseTo(25, 10);
    expect(bar.sections.map((s) => [s.phase, s.current])).toEqual([['load', false], ['quantize', true], ['evaluate:compare', false]]);
    expect(bar.sections.map((s) => s.width)).toEqual([10, 30, 60]);
    expect(bar.sections[0].filled).toBeCloseTo(10, 10);
    expect(bar.sections[1].filled).toBeCloseTo(15, 10);
    expect(bar.sections[2].filled).toBe(0);
    // The next phase starting at 0 of its own count does not restart the bar.
    const next = progressBar({ ...base, phase: 'evaluate:compare', done: 0, total: 100, overall: 0.4, segments }, false);
    expect(next.percent).toBeCloseTo(40, 10);
    expect(next.sections[2].current).toBe(true);
    expect(progressBar({ ...base, phase: 'evaluate:compare', done: 100, total: 100, overall: 1, segments }, true).percent).toBe(100);
  });

  it("without a plan in the event, the phase's own count fills the bar", () => {
    expect(progressBar({ ...base, phase: 'load', done: 1, total: 4 }, false)).toMatchObject({ percent: 25, sections: [{ phase: 'load', width: 100, filled: 25 }] });
    expect(progressBar(null, false)).toEqual({ percent: null, sections: [] });
  });
});
