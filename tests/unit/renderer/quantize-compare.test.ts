import { describe, expect, it } from 'vitest';
import type { Metric } from '../../../preload/contract.ts';
import {
  changePercent, chartData, compareRows, zoomedDomain, continuation, formatChange, formatEstimate, formatRatio, formatRowChange, formatRunSpread, outputFolder, samplePairs, speedSetting, stepReport,
} from '../../../renderer/lib/quantize-compare.ts';

const m = (name: string, value: number, subject: string, unit = ''): Metric => ({ name, value, unit, subject });

const metrics: Metric[] = [
  m('perplexity', 4.1844, 'original'), m('perplexity', 4.5801, 'result'),
  m('bytes_on_disk', 1_090_282, 'original', 'bytes'), m('bytes_on_disk', 473_125, 'result', 'bytes'),
  m('decode_tokens_per_s', 1348.6, 'original', 'tokens/s'), m('decode_tokens_per_s', 2140.4, 'result', 'tokens/s'),
  m('prefill_ms', 2.04, 'original', 'ms'), m('prefill_ms', 2.04, 'result', 'ms'),
  m('parameters', 264_133, 'original'), m('parameters', 264_133, 'result'),
  m('kl_mean', 0.0412, 'result'), m('top1_agreement', 91.5, 'result', '%'),
  m('eval_seconds', 0.3, 'original', 's'),
];

describe('comparison rows', () => {
  const rows = compareRows(metrics);
  const row = (name: string) => rows.find((r) => r.metric === name)!;

  it('lists the fixed metrics in order, whether measured or not', () => {
    expect(rows.map((r) => r.metric)).toEqual(['perplexity', 'kl_mean', 'top1_agreement', 'bytes_on_disk', 'bits_per_weight', 'prefill_ms', 'decode_tokens_per_s', 'parameters']);
    expect(row('bits_per_weight')).toMatchObject({ original: null, result: null, changePercent: null, verdict: null });
  });

  it('computes the change against the original and judges it by the metric\u2019s direction', () => {
    expect(row('perplexity').changePercent).toBeCloseTo(((4.5801 - 4.1844) / 4.1844) * 100, 10);
    expect(row('perplexity').verdict).toBe('worse');
    expect(row('bytes_on_disk').verdict).toBe('better');
    expect(row('bytes_on_disk').changePercent).toBeCloseTo(-56.6, 1);
    // Timings without their runs' spread (an older experiment) are not judged.
    expect(row('decode_tokens_per_s').verdict).toBeNull();
    expect(row('prefill_ms').verdict).toBeNull();
    expect(row('parameters').verdict).toBeNull();
  });

  it('judges a timing only when the runs\u2019 ranges are apart; overlapping ranges are no measurable difference', () => {
    const timing = (oMin: number, oMed: number, oMax: number, rMin: number, rMed: number, rMax: number): Metric[] => [
      m('decode_tokens_per_s', oMed, 'original', 'tokens/s'), m('decode_tokens_per_s_min', oMin, 'original', 'tokens/s'), m('decode_tokens_per_s_max', oMax, 'original', 'tokens/s'),
      m('decode_tokens_per_s', rMed, 'result', 'tokens/s'), m('decode_tokens_per_s_min', rMin, 'result', 'tokens/s'), m('decode_tokens_per_s_max', rMax, 'result', 'tokens/s'),
      m('speed_repeats', 5, 'original', 'runs'), m('speed_repeats', 5, 'result', 'runs'),
    ];
    const decode = (ms: Metric[]) => compareRows(ms).find((r) => r.metric === 'decode_tokens_per_s')!;
    // +237 % on the medians, but the runs overlap: no colour, no percentage.
    const noisy = decode(timing(300, 400, 1500, 900, 1348, 1400));
    expect(noisy.changePercent).toBeCloseTo(237, 0);
    expect(noisy.verdict).toBe('within-spread');
    expect(formatRowChange(noisy)).toBe('no measurable difference');
    expect(noisy.spread.result).toEqual({ min: 900, max: 1400, runs: 5 });
    expect(formatRunSpread(noisy.result, noisy.spread.result)).toBe('900–1,400 tok/s over 5 runs');
    const slower = decode(timing(1300, 1349, 1410, 1000, 1050, 1100));
    expect(slower.verdict).toBe('worse');
    expect(formatRowChange(slower)).toBe('−22.2 %');
    expect(decode(timing(1000, 1050, 1100, 1300, 1349, 1410)).verdict).toBe('better');
  });

  it('says how the speeds were timed', () => {
    const details = { evaluation: { result: { speed: { repeats: 5, threads: 2, provider: 'cpu', order: ['original', 'result', 'original', 'result'] } } } };
    expect(speedSetting(details)).toBe('Speed: original and result timed interleaved in this job, median of 5 runs each after a warm-up, 2 threads, cpu.');
    expect(speedSetting({})).toBeNull();
  });

  it('agreement metrics belong to the result only: no change is computed', () => {
    expect(row('kl_mean')).toMatchObject({ relative: true, original: null, changePercent: null });
    expect(row('kl_mean').result?.value).toBe(0.0412);
  });

  it('formats changes with a sign and sizes as a ratio', () => {
    expect(formatChange(9.456)).toBe('+9.46 %');
    expect(formatChange(-56.61)).toBe('−56.6 %');
    expect(formatChange(-120.4)).toBe('−120 %');
    expect(formatChange(0.01)).toBe('±0 %');
    expect(formatChange(null)).toBe('—');
    expect(changePercent(0, 5)).toBeNull();
    expect(formatRatio(1_090_282, 461_602)).toBe('2.36× smaller');
    expect(formatRatio(100, 200)).toBe('2× larger');
    expect(formatEstimate(1_090_282, 461_602)).toBe('1.04 MiB → 451 KiB (2.36× smaller, −57.7 %)');
  });

  it('charts size (MiB) and perplexity only when both models have them', () => {
    const data = chartData(metrics);
    expect(data.size).toEqual([{ label: 'Size on disk (MiB)', original: 1_090_282 / 2 ** 20, result: 473_125 / 2 ** 20 }]);
    expect(data.perplexity[0]).toMatchObject({ original: 4.1844, result: 4.5801 });
    expect(chartData([m('perplexity', 4, 'original')])).toEqual({ size: [], perplexity: [] });
  });

  it('zooms the perplexity axis so that a 5 % change is visible', () => {
    const [lo, hi] = zoomedDomain([4.1844, 4.5801]);
    expect([lo, hi]).toEqual([3.9, 4.7]);
    // The smaller bar is under half the larger one's height on this axis (from zero they differ by 9 %).
    expect((4.1844 - lo) / (4.5801 - lo)).toBeLessThan(0.5);
    const [lo5, hi5] = zoomedDomain([10, 10.5]);
    expect(lo5).toBeGreaterThan(9);
    expect(hi5).toBeGreaterThan(10.5);
    expect((10 - lo5) / (10.5 - lo5)).toBeLessThan(0.75);
    // Equal values get a band around them; never below zero.
    const [loEq, hiEq] = zoomedDomain([2, 2]);
    expect(loEq).toBeLessThan(2);
    expect(hiEq).toBeGreaterThan(2);
    expect(zoomedDomain([0.001, 0.5])[0]).toBe(0);
  });
});

describe('generations side by side', () => {
  it('reads details.samples = [{ prompt, original, result }] (strings or generation objects)', () => {
    expect(samplePairs({ samples: [{ prompt: 'Once', original: ' upon', result: { completion: 'upon', text: 'Once upon' } }] }))
      .toEqual([{ prompt: 'Once', original: ' upon', result: ' upon' }]);
  });

  it('puts back the space a completion decoded on its own lost, and only between words', () => {
    expect(continuation('The little dog', 'was happy')).toBe(' was happy');
    expect(continuation('Once upon a time', ', there was')).toBe(', there was');
    expect(continuation('She said "', 'hi')).toBe('hi');
    expect(continuation('The dog', { text: 'The dog\nran', completion: 'ran' })).toBe('\nran');
    expect(continuation('x', 42)).toBeNull();
  });

  it('else pairs the per-subject lists by position', () => {
    const details = {
      evaluation: {
        original: { samples: [{ prompt: 'P1', completion: ' o1' }, { prompt: 'P2', completion: ' o2' }] },
        result: { samples: [{ prompt: 'P1', completion: ' r1' }] },
      },
    };
    expect(samplePairs(details)).toEqual([{ prompt: 'P1', original: ' o1', result: ' r1' }, { prompt: 'P2', original: ' o2', result: null }]);
    expect(samplePairs({})).toEqual([]);
    expect(samplePairs(null)).toEqual([]);
  });
});

describe('the step report and the output', () => {
  const frame = { type: 'quantize', input: '/m/model.onnx', output: '/h/experiments/5/output/model.onnx', outputDir: '/h/experiments/5/output', outputBytes: 900, modelBytes: 800 };
  const rtn = {
    ...frame, method: 'rtn', format: 'matmulnbits', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4, quantized: 35, quantizedWeights: [], sqError: 0.25,
    skipped: [{ name: 'rope_cos', reason: 'rotary table' }, { name: 'emb', reason: 'tied embeddings' }],
  };
  const details = { steps: [rtn] };

  it('reads quantized and skipped weights from details.steps[0]', () => {
    expect(stepReport(details)).toEqual({ method: 'rtn', quantized: 35, skipped: [{ name: 'rope_cos', reason: 'rotary table' }, { name: 'emb', reason: 'tied embeddings' }], outputDir: '/h/experiments/5/output' });
    expect(stepReport({})).toEqual({ method: null, quantized: null, skipped: [], outputDir: null });
    // Details that do not match the step's schema are not read.
    expect(stepReport({ steps: [{ ...rtn, quantized: 'many' }] })).toEqual({ method: null, quantized: null, skipped: [], outputDir: null });
    // FP16 reports the tensors it converted.
    const fp16 = { ...frame, method: 'fp16', converted: 52, keptFp32: [], blockOps: [], keepIoTypes: true, fp32Nodes: [], casts: 0, warnings: [] };
    expect(stepReport({ steps: [fp16] })).toMatchObject({ method: 'fp16', quantized: 52 });
  });

  it('finds the output folder from the artefacts, the model\u2019s folder, or the step', () => {
    expect(outputFolder([{ kind: 'model', path: '/o/model.onnx', bytes: 1 }, { kind: 'folder', path: '/o', bytes: 2 }])).toBe('/o');
    expect(outputFolder([{ kind: 'model', path: '/o/x/model.onnx', bytes: 1 }])).toBe('/o/x');
    expect(outputFolder([], details)).toBe('/h/experiments/5/output');
    expect(outputFolder([])).toBeNull();
  });
});
