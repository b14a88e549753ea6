import { afterEach, expect, it, vi } from 'vitest';
import type { JobProgress } from '../../../preload/contract.ts';
import { createLinkClient } from '../../../preload/wire.ts';

afterEach(() => { vi.restoreAllMocks(); });

const progress: JobProgress = { jobId: 'j1', experimentId: 3, seq: 4, phase: 'quantize', done: 2, total: 10, etaSeconds: 1.5, message: 'w' };

it('delivers events that match the contract and drops the ones that do not', () => {
  const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
  const client = createLinkClient(() => {});
  const seen: unknown[] = [];
  client.on('job.progress', (p) => seen.push(p));
  client.on('history.changed', (p) => seen.push(p));

  client.receive({ type: 'event', channel: 'job.progress', payload: progress });
  client.receive({ type: 'event', channel: 'job.progress', payload: { ...progress, done: 'two' } });
  client.receive({ type: 'event', channel: 'job.progress', payload: { ...progress, extra: true } });
  client.receive({ type: 'event', channel: 'history.changed', payload: { experimentId: null } });
  client.receive({ type: 'event', channel: 'history.changed', payload: { experimentId: -1 } });

  expect(seen).toEqual([progress, { experimentId: null }]);
  expect(errors).toHaveBeenCalledTimes(3);
});

it('accepts non-finite metric values, which a diverged evaluation can produce', () => {
  const client = createLinkClient(() => {});
  const seen: unknown[] = [];
  client.on('job.result', (p) => seen.push(p));
  const result = { jobId: 'j1', experimentId: 3, seq: 9, metrics: [{ name: 'perplexity', value: Number.POSITIVE_INFINITY, unit: '', subject: 'model' }], artefacts: [], details: {} };
  client.receive({ type: 'event', channel: 'job.result', payload: result });
  expect(seen).toEqual([result]);
});
