/**
 * A series point (a training curve) on its way from the engine to the renderer: the engine → host message,
 * the `job.point` event checked by the contract on the client (non-finite values survive the wire), and the
 * renderer's job state and store folding the points into a curve, a resumed run's replay included.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventName, EventPayloads, JobInfo, JobPoint, WhittleApi } from '../../../preload/contract.ts';
import { decodeWire, encodeWire, createLinkClient } from '../../../preload/wire.ts';
import { parseEngineMessage } from '../../../main/jobs/protocol.ts';
import { createJobStore } from '../../../renderer/lib/job-store.ts';
import { applyJobEvent, initialJobState, isJobEventChannel } from '../../../renderer/lib/job-state.ts';
import { liveCurve } from '../../../renderer/lib/train-curve.ts';

afterEach(() => { vi.restoreAllMocks(); });

const pointEvent = (seq: number, step: number, loss: number, extra: Record<string, number> = {}): JobPoint => ({
  jobId: 'j1', experimentId: 4, seq, series: 'train', step, values: { totalSteps: 8, loss, lr: 1e-3, gradNorm: 0.5, tokensPerSecond: 900, etaSeconds: 2, ...extra },
});

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

describe('the job.point event', () => {
  it('is delivered when it matches the contract (NaN and Infinity included, through the wire codec) and dropped otherwise', () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const client = createLinkClient(() => {});
    const seen: JobPoint[] = [];
    client.on('job.point', (p) => seen.push(p));
    const diverged = pointEvent(5, 2, Number.POSITIVE_INFINITY, { gradNorm: Number.NaN });
    client.receive(decodeWire(encodeWire({ type: 'event', channel: 'job.point', payload: diverged })));
    client.receive({ type: 'event', channel: 'job.point', payload: { ...pointEvent(6, 3, 4), extra: 1 } });
    client.receive({ type: 'event', channel: 'job.point', payload: { ...pointEvent(7, 3, 4), series: '' } });
    expect(seen).toHaveLength(1);
    expect(seen[0].values.loss).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(seen[0].values.gradNorm)).toBe(true);
    expect(errors).toHaveBeenCalledTimes(2);
  });

  it('folds into the job\'s curve in step order; a resumed run\'s replay replaces the steps after its checkpoint', () => {
    expect(isJobEventChannel('job.point')).toBe(true);
    let s = initialJobState('j1');
    for (const [seq, step, loss] of [[1, 1, 5], [2, 2, 4.5], [3, 3, 4.2], [4, 2, 4.4], [5, 3, 4.1]]) {
      s = applyJobEvent(s, { channel: 'job.point', payload: pointEvent(seq, step, loss) });
    }
    expect(s.experimentId).toBe(4);
    expect(liveCurve(s.series).map((p) => [p.step, p.loss])).toEqual([[1, 5], [2, 4.4], [3, 4.1]]);
    expect(applyJobEvent(s, { channel: 'job.point', payload: { ...pointEvent(6, 4, 4), jobId: 'other' } })).toBe(s);
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
      points: [1, 2].map((step) => { const { jobId: _j, experimentId: _e, seq: _s, ...p } = pointEvent(0, step, 6 - step); return p; }),
    };
    store.seedRunning([info]);
    handlers.get('job.point')!(pointEvent(9, 3, 2.5));
    expect(liveCurve(store.get('j1')!.series).map((p) => p.step)).toEqual([1, 2, 3]);
    store.dispose();
  });
});
