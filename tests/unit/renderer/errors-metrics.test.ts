import { describe, expect, it } from 'vitest';
import { errorTitle, errorTitleFor, toUiError } from '../../../renderer/lib/errors.ts';
import { formatMetric, metricLabel, metricTestId, sortMetrics } from '../../../renderer/lib/metrics.ts';

describe('errors in the UI', () => {
  it('keeps typed errors and turns anything else into INTERNAL', () => {
    class CallError extends Error { code = 'MODEL_PARSE'; }
    expect(toUiError(new CallError('not onnx'))).toEqual({ code: 'MODEL_PARSE', message: 'not onnx' });
    expect(toUiError({ code: 'IO', message: 'disk full', details: { path: '/x' } })).toEqual({ code: 'IO', message: 'disk full', details: { path: '/x' } });
    expect(toUiError({ code: 'ENOENT', message: 'nope' })).toEqual({ code: 'INTERNAL', message: 'nope' });
    expect(toUiError('boom')).toEqual({ code: 'INTERNAL', message: 'boom' });
    expect(toUiError(undefined).code).toBe('INTERNAL');
    expect(errorTitle('MODEL_PARSE')).toBe('Not a readable ONNX model');
    class ConnectionError extends Error { code = 'IO'; override name = 'ConnectionError'; }
    const lost = toUiError(new ConnectionError('The connection to Whittle was lost.'));
    expect(lost).toEqual({ code: 'IO', message: 'The connection to Whittle was lost.', details: { connection: true } });
    expect(errorTitleFor(lost)).toBe('No connection to Whittle');
    expect(errorTitleFor({ code: 'IO', message: 'disk full' })).toBe('Could not read or write a file');
  });
});

describe('metrics in the UI', () => {
  it('formats by name first, then by unit', () => {
    expect(formatMetric({ name: 'perplexity', value: 4.226731, unit: '' })).toBe('4.2267');
    expect(formatMetric({ name: 'predicted_tokens', value: 38675, unit: '' })).toBe('38,675');
    expect(formatMetric({ name: 'bytes_on_disk', value: 1_096_412, unit: 'bytes' })).toBe('1.05 MiB');
    expect(formatMetric({ name: 'prefill_ms', value: 1.873, unit: 'ms' })).toBe('1.87 ms');
    expect(formatMetric({ name: 'decode_tokens_per_s', value: 2210.4, unit: 'tokens/s' })).toBe('2,210 tok/s');
    expect(formatMetric({ name: 'something_new', value: 0.5, unit: 'widgets' })).toBe('0.5 widgets');
    expect(metricLabel('something_new')).toBe('Something new');
  });

  it('orders quality before speed before footprint, and names test ids by subject', () => {
    const sorted = sortMetrics([
      { name: 'bytes_on_disk', subject: 'model' }, { name: 'zeta', subject: 'model' },
      { name: 'prefill_ms', subject: 'model' }, { name: 'perplexity', subject: 'result' }, { name: 'perplexity', subject: 'original' },
    ]);
    expect(sorted.map((m) => `${m.name}/${m.subject}`)).toEqual(['perplexity/original', 'perplexity/result', 'prefill_ms/model', 'bytes_on_disk/model', 'zeta/model']);
    expect(metricTestId({ name: 'perplexity', subject: 'model' })).toBe('metric-perplexity');
    expect(metricTestId({ name: 'perplexity', subject: 'original' })).toBe('metric-perplexity-original');
  });
});
