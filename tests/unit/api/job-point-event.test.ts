/**
 * Series points (a training curve) on their way from the engine to the renderer: the engine → host message,
 * the `job.points` event (a batch) checked by the contract on the client (non-finite values survive the
 * wire), and the renderer's job state and store folding the points into a curve, a resumed run's replay
 * included.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventName, EventPayloads, JobInfo, JobPoints, WhittleApi } from '../../../preload/contract.ts';
import type { SeriesPoint } from '../../../preload/series.ts';
import { decodeWire, encodeWire, createLinkClient } from '../../../preload/wire.ts';
import { parseEngineMessage } from '../../../main/jobs/protocol.ts';
import { createJobStore } from '../../../renderer/lib/job-store.ts';
import { applyJobEvent, initialJobState, isJobEventChannel } from '../../../renderer/lib/job-state.ts';
import { liveCurve } from '../../../renderer/lib/train-curve.ts';

afterEach(() => { vi.restoreAllMocks(); });

const point = (step: number, loss: number, extra: Record<string, number> = {}): SeriesPoint => ({
  series: 'train', step, values: { totalSteps: 8, loss, lr: 1e-3, gradNorm: 0.5, tokensPerSecond: 900, etaSeconds: 2, ...extra },
});
const batch = (seq: number, points: SeriesPoint[]): JobPoints => ({ jobId: 'j1', experimentId: 4, seq, points });

describe('the engine → host point message', () => {
  it('parses a point and refuses one without its series or with a value that is not a number', () => {
    const ok = parseEngineMessage({ type: 'point', series: 'train', step: 3, values: { loss: 4.1, lr: Number.NaN } });
    expect(ok).toMatchObject({ type: 'point', series: 'train', step: 3 });
    expect(ok.type === 'point' && Number.isNaN(ok.values.lr)).toBe(true);
    for (const bad of [{ type: 'point', step: 3, values: {} }, { type: 'point', series: 'train', step: 3, values: { loss: 'high' } }, { type: 'point', series: 'train', step: -1, values: {} }]) {
      const m = parseEngineMessage(bad);
      expect(m.type).toBe('error');
      expect(m.type === 'error' && m.error.code).toBe('INTERNAL');
    }
  });
});

describe('the job.points event', () => {
  it('is delivered when it matches the contract (NaN and Infinity included, through the wire codec) and dropped otherwise', () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const client = createLinkClient(() => {});
    const seen: JobPoints[] = [];
    client.on('job.points', (p) => seen.push(p));
    const diverged = batch(5, [point(1, 5), point(2, Number.POSITIVE_INFINITY, { gradNorm: Number.NaN })]);
    client.receive(decodeWire(encodeWire({ type: 'event', channel: 'job.points', payload: diverged })));
    client.receive({ type: 'event', channel: 'job.points', payload: { ...batch(6, [point(3, 4)]), extra: 1 } });
    client.receive({ type: 'event', channel: 'job.points', payload: batch(7, [{ ...point(3, 4), series: '' }]) });
    client.receive({ type: 'event', channel: 'job.points', payload: batch(8, []) });
    expect(seen).toHaveLength(1);
    expect(seen[0].points[1].values.loss).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(seen[0].points[1].values.gradNorm)).toBe(true);
    expect(errors).toHaveBeenCalledTimes(3);
  });

  it('folds into the job\'s curve in step order; a resumed run\'s replay replaces the steps after its checkpoint', () => {
    expect(isJobEventChannel('job.points')).toBe(true);
    let s = initialJobState('j1');
    s = applyJobEvent(s, { channel: 'job.points', payload: batch(1, [point(1, 5), point(2, 4.5)]) });
    s = applyJobEvent(s, { channel: 'job.points', payload: batch(2, [point(3, 4.2), point(2, 4.4), point(3, 4.1), { ...point(1, 0.5), series: 'kd' }]) });
    expect(s.experimentId).toBe(4);
    expect(liveCurve(s.series).map((p) => [p.step, p.loss])).toEqual([[1, 5], [2, 4.4], [3, 4.1]]);
    expect(s.series.kd).toHaveLength(1);
    expect(applyJobEvent(s, { channel: 'job.points', payload: { ...batch(3, [point(4, 4)]), jobId: 'other' } })).toBe(s);
  });

  it('the store keeps the points a job streamed before a page attached (jobs.list) and those after', () => {
    const handlers = new Map<string, (p: unknown) => void>();
    const api: Pick<WhittleApi, 'on'> = {
      on: <E extends EventName>(channel: E, listener: (payload: EventPayloads[E]) => void) => {
        handlers.set(channel, listener as (p: unknown) => void);
        return () => { handlers.delete(channel); };
      },
    };
    const store = createJobStore(api);
    const info: JobInfo = {
      jobId: 'j1', experimentId: 4, name: 'Train', status: 'running', progress: null,
      points: [point(1, 5), point(2, 4)],
    };
    store.seedRunning([info]);
    handlers.get('job.points')!(batch(9, [point(3, 2.5)]));
    expect(liveCurve(store.get('j1')!.series).map((p) => p.step)).toEqual([1, 2, 3]);
    store.dispose();
  });
});
