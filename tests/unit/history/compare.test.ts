import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Metric } from '../../../preload/contract.ts';
import type { Comparison } from '../../../preload/comparison.ts';
import { judge, metricDirection } from '../../../preload/metric-direction.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { compareExperiments, diffRecipes, recipeLabel } from '../../../main/history/compare.ts';
import { openHistory, type History } from '../../../main/history/index.ts';
import { comparisonText } from '../../../main/cli/compare.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
let h: History;
beforeEach(() => {
  scratch = tempDir('whittle-compare-');
  h = openHistory({ home: scratch.dir });
});
afterEach(() => {
  h.close();
  scratch.cleanup();
});

const ORIGINAL = 'a1'.repeat(32);
const TEXT = '/data/eval.txt';
const m = (name: string, value: number, subject: string, unit = ''): Metric => ({ name, value, unit, subject });

interface Run {
  steps?: unknown[];
  metrics: Metric[];
  /** The evaluation settings as the engine records them (defaults filled in). */
  perplexity?: { text?: string; window?: number; maxSamples?: number; chars?: number } | null;
  speed?: { threads: number } | null;
  stepDetails?: unknown[];
  samples?: unknown[];
  modelSha256?: string;
}

/** Records a finished run the way the job service does: experiment, metrics, details, status. */
function record(r: Run): number {
  const ppl = r.perplexity === null ? undefined : { text: r.perplexity?.text ?? TEXT, protocol: 'documents', window: r.perplexity?.window ?? 256, maxSamples: r.perplexity?.maxSamples ?? 40, minTokens: 16 };
  const speed = r.speed ? { promptTokens: 64, decodeTokens: 64, repeats: 3, threads: 0 } : undefined;
  const recipe = { version: 1, model: { path: '/models/m.onnx' }, steps: r.steps ?? [], tokenizer: { path: '/models/tokenizer.json' }, evaluation: { footprint: true, ...(ppl ? { perplexity: ppl } : {}), ...(speed ? { speed } : {}) } };
  const subject = (r.steps ?? []).length > 0 ? 'result' : 'model';
  const id = h.createExperiment({ name: `run ${(r.steps ?? []).length}`, kind: (r.steps?.[0] as { type?: string } | undefined)?.type ?? 'evaluate', recipe, modelPath: '/models/m.onnx', modelSha256: r.modelSha256 ?? ORIGINAL, status: 'running' });
  h.addMetrics(id, r.metrics);
  h.setDetails(id, {
    tokenizer: { path: '/models/tokenizer.json' },
    settings: { threads: 0, evaluation: { footprint: true, ...(ppl ? { perplexity: ppl } : {}), ...(speed ? { speed } : {}) } },
    steps: r.stepDetails ?? [],
    evaluation: { [subject]: { perplexity: ppl ? { charsInText: r.perplexity?.chars ?? 83_578, samples: ppl.maxSamples, predictedTokens: 4059 } : undefined, speed: r.speed ? { threads: r.speed.threads } : undefined } },
    ...(r.samples ? { samples: r.samples, samplePrompts: { source: 'default', maxNewTokens: 48 } } : {}),
  });
  h.finish(id, 'done', null, 1000);
  return id;
}

const quantizeStep = (method: 'rtn' | 'gptq', bits = 4, blockSize?: number) => ({ type: 'quantize', method, bits, ...(blockSize ? { blockSize } : {}), ...(method === 'gptq' ? { calibration: { text: '/data/calib.txt' } } : {}) });

function quantizeDetails(method: 'rtn' | 'gptq', weights: { name: string; sqError: number; loss?: number }[]) {
  return {
    type: 'quantize', input: '/models/m.onnx', output: '/out/model.onnx', method, outputDir: '/out', outputBytes: 500, modelBytes: 480,
    format: 'matmulnbits', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4, quantized: weights.length,
    quantizedWeights: weights.map((w) => ({ name: w.name, shape: [64, 64], bits: 4, sqError: w.sqError, ...(w.loss !== undefined ? { loss: w.loss } : {}) })),
    skipped: [], sqError: weights.reduce((a, w) => a + w.sqError, 0), warnings: [],
    ...(method === 'gptq' ? { percdamp: 0.01, actOrder: false, columnBlock: 128, calibration: { text: '/data/calib.txt', samples: 8, length: 64, seed: 0 }, sequential: true, hessians: [] } : {}),
  };
}

function pruneDetails(weights: { name: string; sparsity: number }[]) {
  return {
    type: 'prune', input: '/models/m.onnx', output: '/out/model.onnx', method: 'magnitude', outputDir: '/out', outputBytes: 1000, modelBytes: 990,
    sparsity: 0.5, pattern: null, scope: 'layer', allocation: 'uniform', achievedSparsity: 0.5, prunedParams: 8192, zeros: 4096, pruned: weights.length,
    prunedWeights: weights.map((w) => ({ name: w.name, shape: [64, 64], block: 0, role: 'q', params: 4096, zeros: Math.round(4096 * w.sparsity), sparsity: w.sparsity, target: 0.5 })),
    blocks: [], skipped: [], notes: [], warnings: [],
  };
}

/** A compression's metrics: the original and the result, as one job measures them. */
function compression(result: Record<string, number>, original: Record<string, number> = { perplexity: 3.9, bytes_on_disk: 1_090_000 }): Metric[] {
  const unit = (name: string) => (name.startsWith('bytes') ? 'bytes' : name.startsWith('decode_tokens_per_s') ? 'tokens/s' : name.startsWith('prefill_ms') ? 'ms' : name === 'top1_agreement' ? '%' : '');
  return [
    ...Object.entries(original).map(([k, v]) => m(k, v, 'original', unit(k))),
    ...Object.entries(result).map(([k, v]) => m(k, v, 'result', unit(k))),
  ];
}

const cell = (c: Comparison, metric: string, id: number) => {
  const row = c.metrics.find((x) => x.name === metric);
  if (!row) throw new Error(`no row ${metric}`);
  return row.cells.find((x) => x.id === id)!;
};

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return (e as WhittleError).code;
  }
  throw new Error('expected a WhittleError');
}

describe('metric directions', () => {
  it('knows which way is better, by name, then unit, then name pattern', () => {
    expect(metricDirection('perplexity')).toBe('lower');
    expect(metricDirection('kl_mean')).toBe('lower');
    expect(metricDirection('bytes_on_disk')).toBe('lower');
    expect(metricDirection('prefill_ms')).toBe('lower');
    expect(metricDirection('decode_tokens_per_s')).toBe('higher');
    expect(metricDirection('accuracy')).toBe('higher');
    expect(metricDirection('top1_agreement')).toBe('higher');
    expect(metricDirection('parameters')).toBeNull();
    expect(metricDirection('something_new', 'ms')).toBe('lower');
    expect(metricDirection('throughput', 'items/s')).toBe('higher');
    expect(metricDirection('val_loss')).toBe('lower');
    expect(metricDirection('mystery')).toBeNull();
  });

  it('judges a value against a reference by direction, and not at all without one or with a missing value', () => {
    expect(judge('lower', 4.1, 4.3)).toBe('better');
    expect(judge('lower', 4.5, 4.3)).toBe('worse');
    expect(judge('higher', 4.5, 4.3)).toBe('better');
    expect(judge('higher', 4.3, 4.3)).toBe('same');
    expect(judge(null, 1, 2)).toBeNull();
    expect(judge('lower', Number.NaN, 2)).toBeNull();
    expect(judge('lower', null, 2)).toBeNull();
  });
});

describe('compareExperiments', () => {
  it('puts each run\'s result beside the baseline\'s, with changes judged by each metric\'s direction', () => {
    const rtn = record({ steps: [quantizeStep('rtn')], speed: { threads: 2 }, metrics: compression({ perplexity: 4.3, kl_mean: 0.08, top1_agreement: 86, bytes_on_disk: 473_000, decode_tokens_per_s: 2000, decode_tokens_per_s_min: 1900, decode_tokens_per_s_max: 2100, prefill_ms: 2, prefill_ms_min: 1.9, prefill_ms_max: 2.1 }) });
    const gptq = record({ steps: [quantizeStep('gptq')], speed: { threads: 2 }, metrics: compression({ perplexity: 4.1, kl_mean: 0.06, top1_agreement: 89, bytes_on_disk: 473_000, decode_tokens_per_s: 2050, decode_tokens_per_s_min: 1950, decode_tokens_per_s_max: 2150, prefill_ms: 3, prefill_ms_min: 2.9, prefill_ms_max: 3.1 }) });
    const evaluated = record({ metrics: [m('perplexity', 3.9, 'model'), m('bytes_on_disk', 1_090_000, 'model', 'bytes')] });

    const c = compareExperiments([rtn, gptq, evaluated].map((id) => h.get(id)));
    expect(c.baseline).toBe(rtn);
    expect(c.ids).toEqual([rtn, gptq, evaluated]);
    expect(c.experiments.map((e) => [e.method, e.subject])).toEqual([['RTN 4-bit g32', 'result'], ['GPTQ 4-bit g32', 'result'], ['Evaluate', 'model']]);
    expect(c.experiments[0].original.perplexity.value).toBe(3.9);

    const ppl = cell(c, 'perplexity', gptq);
    expect(ppl.value).toBe(4.1);
    expect(ppl.difference).toBeCloseTo(-0.2, 12);
    expect(ppl.percent).toBeCloseTo((-0.2 / 4.3) * 100, 10);
    expect(ppl.verdict).toBe('better');
    expect(cell(c, 'perplexity', evaluated).verdict).toBe('better');
    expect(cell(c, 'top1_agreement', gptq).verdict).toBe('better');
    expect(cell(c, 'kl_mean', gptq).verdict).toBe('better');
    expect(cell(c, 'bytes_on_disk', gptq).verdict).toBe('same');
    expect(cell(c, 'bytes_on_disk', evaluated).verdict).toBe('worse');
    // The baseline's own cell: no verdict, no change.
    expect(cell(c, 'perplexity', rtn)).toMatchObject({ verdict: null, difference: 0, percent: 0, comparable: true });
    // Decode speeds 2000 [1900, 2100] and 2050 [1950, 2150] overlap: no measurable difference; prefill 2 vs 3 ms do not.
    expect(cell(c, 'decode_tokens_per_s', gptq).verdict).toBe('within-spread');
    expect(cell(c, 'prefill_ms', gptq).verdict).toBe('worse');
    // A metric one run did not measure.
    expect(cell(c, 'kl_mean', evaluated)).toMatchObject({ value: null, difference: null, verdict: null });
    // Quality first, then speed, then size.
    const order = c.metrics.map((x) => x.name);
    expect(order.indexOf('perplexity')).toBeLessThan(order.indexOf('decode_tokens_per_s'));
    expect(order.indexOf('decode_tokens_per_s')).toBeLessThan(order.indexOf('bytes_on_disk'));
    expect(c.metrics.find((x) => x.name === 'perplexity')).toMatchObject({ direction: 'lower', group: 'quality' });
    // Speed from separate jobs is flagged for every pair, not as a mismatch.
    expect(c.notes.filter((n) => n.severity === 'warning')).toEqual([]);
    expect(c.notes.find((n) => n.aspect === 'speed' && n.severity === 'info')?.groups[0].ids).toEqual([rtn, gptq]);
  });

  it('measures against the baseline asked for', () => {
    const a = record({ steps: [quantizeStep('rtn')], metrics: compression({ perplexity: 5, eval_tokens_per_s: 9000 }) });
    const b = record({ steps: [quantizeStep('rtn', 8)], metrics: compression({ perplexity: 4, eval_tokens_per_s: 8000 }) });
    const c = compareExperiments([h.get(a), h.get(b)], b);
    // How fast each evaluation ran is a timing from its own job too.
    expect(c.notes.find((n) => n.severity === 'info')).toMatchObject({ aspect: 'speed', groups: [{ ids: [a, b] }] });
    expect(c.notes.find((n) => n.severity === 'info')?.metrics).toContain('eval_tokens_per_s');
    expect(c.baseline).toBe(b);
    expect(cell(c, 'perplexity', a)).toMatchObject({ difference: 1, percent: 25, verdict: 'worse' });
    expect(cell(c, 'perplexity', b).verdict).toBeNull();
  });

  it('diffs the recipes with their defaults filled in', () => {
    const a = record({ steps: [quantizeStep('rtn', 4)], metrics: compression({ perplexity: 5 }) });
    const b = record({ steps: [quantizeStep('rtn', 4, 32)], metrics: compression({ perplexity: 5 }) });
    const c = record({ steps: [quantizeStep('gptq', 8, 64)], metrics: compression({ perplexity: 5 }) });
    expect(compareExperiments([h.get(a), h.get(b)]).recipeDiff).toEqual([]);
    const diff = compareExperiments([a, b, c].map((id) => h.get(id))).recipeDiff;
    const byPath = Object.fromEntries(diff.map((d) => [d.path, d.values]));
    expect(byPath['steps[0].method']).toEqual(['"rtn"', '"rtn"', '"gptq"']);
    expect(byPath['steps[0].bits']).toEqual(['4', '4', '8']);
    expect(byPath['steps[0].blockSize']).toEqual(['32', '32', '64']);
    expect(byPath['steps[0].calibration.text']).toEqual([null, null, '"/data/calib.txt"']);
    expect(byPath['model.path']).toBeUndefined();
  });

  it('flattens JSON to paths and lists only those that differ, absent as null', () => {
    expect(diffRecipes([{ a: { b: [1, 2] }, c: {} }, { a: { b: [1, 3] }, c: {} }])).toEqual([{ path: 'a.b[1]', values: ['2', '3'] }]);
    expect(diffRecipes([{ a: 1 }, { a: 1, b: 'x' }])).toEqual([{ path: 'b', values: [null, '"x"'] }]);
    const recipe = (steps: unknown[]) => ({ version: 1, model: { path: '/m.onnx' }, steps });
    expect(recipeLabel(recipe([{ type: 'prune', method: 'magnitude', sparsity: 0.5 }, { type: 'quantize', method: 'rtn', bits: 4 }]))).toBe('Magnitude 50% → RTN 4-bit g32');
    expect(recipeLabel(recipe([]))).toBe('Evaluate');
    // A recipe this version cannot read still says what it did.
    expect(recipeLabel({ steps: [{ type: 'quantize', method: 'awq' }] })).toBe('quantize awq');
  });

  it('says which runs were evaluated on other text, protocol or from another model, and marks only the changes it concerns', () => {
    const a = record({ steps: [quantizeStep('rtn')], metrics: compression({ perplexity: 4.3, kl_mean: 0.08, bytes_on_disk: 473_000 }) });
    const shortWindow = record({ steps: [quantizeStep('gptq')], perplexity: { window: 128, maxSamples: 20 }, metrics: compression({ perplexity: 4.6, kl_mean: 0.07, bytes_on_disk: 473_000 }) });
    const otherText = record({ steps: [quantizeStep('rtn', 8)], perplexity: { text: '/data/wiki.txt' }, metrics: compression({ perplexity: 9, kl_mean: 0.01, bytes_on_disk: 600_000 }) });
    const otherModel = record({ steps: [quantizeStep('rtn')], modelSha256: 'b2'.repeat(32), metrics: compression({ perplexity: 4.4, kl_mean: 0.09, bytes_on_disk: 470_000 }) });
    const c = compareExperiments([a, shortWindow, otherText, otherModel].map((id) => h.get(id)));

    const protocol = c.notes.find((n) => n.aspect === 'protocol')!;
    expect(protocol.severity).toBe('warning');
    expect(protocol.groups.map((g) => g.ids)).toEqual([[a, otherText, otherModel], [shortWindow]]);
    expect(protocol.groups[1].value).toContain('128 tokens');
    expect(protocol.pairs).toEqual([[a, shortWindow], [shortWindow, otherText], [shortWindow, otherModel]].map(([x, y]) => [Math.min(x, y), Math.max(x, y)]));
    expect(protocol.metrics).toContain('perplexity');

    const text = c.notes.find((n) => n.aspect === 'text')!;
    expect(text.groups.map((g) => g.ids)).toEqual([[a, shortWindow, otherModel], [otherText]]);
    expect(text.groups[1].value).toContain('/data/wiki.txt');

    const model = c.notes.find((n) => n.aspect === 'model')!;
    expect(model.groups.map((g) => g.ids)).toEqual([[a, shortWindow, otherText], [otherModel]]);
    expect(model.metrics).toEqual(['kl_mean', 'top1_agreement']);

    expect(cell(c, 'perplexity', shortWindow)).toMatchObject({ comparable: false, reasons: ['protocol'] });
    expect(cell(c, 'perplexity', otherText)).toMatchObject({ comparable: false, reasons: ['text'] });
    // Perplexity is absolute: another starting model does not stop its comparison; KL is against each run's own original.
    expect(cell(c, 'perplexity', otherModel).comparable).toBe(true);
    expect(cell(c, 'kl_mean', otherModel)).toMatchObject({ comparable: false, reasons: ['model'] });
    // Size does not depend on the evaluation.
    expect(cell(c, 'bytes_on_disk', shortWindow).comparable).toBe(true);
    expect(cell(c, 'bytes_on_disk', otherText).comparable).toBe(true);

    const text2 = comparisonText(c);
    expect(text2).toContain('≠');
    expect(text2).toContain('different protocol');
  });

  it('notices the same text file changed between runs, and different speed settings', () => {
    const a = record({ steps: [quantizeStep('rtn')], speed: { threads: 2 }, metrics: compression({ perplexity: 4.3, decode_tokens_per_s: 2000 }) });
    const b = record({ steps: [quantizeStep('gptq')], speed: { threads: 8 }, perplexity: { chars: 90_000 }, metrics: compression({ perplexity: 4.1, decode_tokens_per_s: 4000 }) });
    const c = compareExperiments([h.get(a), h.get(b)]);
    expect(c.notes.find((n) => n.aspect === 'text')?.groups.map((g) => g.value)).toEqual([`${TEXT} (83578 characters)`, `${TEXT} (90000 characters)`]);
    expect(c.notes.find((n) => n.aspect === 'speed' && n.severity === 'warning')?.groups.map((g) => g.value)).toEqual([
      'prompt 64 tokens, 64 decoded, 2 threads', 'prompt 64 tokens, 64 decoded, 8 threads',
    ]);
    expect(cell(c, 'decode_tokens_per_s', b)).toMatchObject({ verdict: 'better', comparable: false, reasons: ['speed'] });
  });

  it('lines up generations by prompt, with the original\'s text from a run that measured it', () => {
    const a = record({ steps: [quantizeStep('rtn')], metrics: compression({ perplexity: 4.3 }), samples: [{ prompt: 'Once', original: ' upon a time', result: ' upon a hill' }, { prompt: 'The dog', original: ' ran', result: ' sat' }] });
    const b = record({ metrics: [m('perplexity', 3.9, 'model')], samples: [{ prompt: 'The dog', completion: ' barked', text: 'The dog barked' }, { prompt: 'Hello', completion: ' world', text: 'Hello world' }] });
    const c = compareExperiments([h.get(a), h.get(b)]);
    expect(c.generations).toEqual([
      { prompt: 'Once', original: ' upon a time', texts: [' upon a hill', null] },
      { prompt: 'The dog', original: ' ran', texts: [' sat', ' barked'] },
      { prompt: 'Hello', original: null, texts: [null, ' world'] },
    ]);
    expect(c.notes.find((n) => n.aspect === 'generations')?.groups).toHaveLength(2);
  });

  it('overlays per-weight series on the union of weight names, null where a run has no figure', () => {
    const rtn = record({ steps: [quantizeStep('rtn')], metrics: compression({ perplexity: 4.3 }), stepDetails: [quantizeDetails('rtn', [{ name: 'w.q', sqError: 1.5 }, { name: 'w.k', sqError: 0.5 }])] });
    const gptq = record({ steps: [quantizeStep('gptq')], metrics: compression({ perplexity: 4.1 }), stepDetails: [quantizeDetails('gptq', [{ name: 'w.k', sqError: 0.7, loss: 0.3 }, { name: 'w.v', sqError: 0.2, loss: 0.1 }])] });
    const pruned = record({ steps: [{ type: 'prune', method: 'magnitude', sparsity: 0.5 }], metrics: compression({ perplexity: 33 }), stepDetails: [pruneDetails([{ name: 'w.q', sparsity: 0.5 }, { name: 'w.k', sparsity: 0.25 }])] });
    const c = compareExperiments([rtn, gptq, pruned].map((id) => h.get(id)));

    const error = c.series.find((s) => s.kind === 'quantization-error')!;
    expect(error.ids).toEqual([rtn, gptq]);
    expect(error.weights).toEqual(['w.q', 'w.k', 'w.v']);
    expect(error.values).toEqual([[1.5, 0.5, null], [null, 0.7, 0.2]]);
    const loss = c.series.find((s) => s.kind === 'gptq-loss')!;
    expect(loss.ids).toEqual([gptq]);
    expect(loss.values).toEqual([[0.3, 0.1]]);
    const sparsity = c.series.find((s) => s.kind === 'sparsity')!;
    expect(sparsity).toMatchObject({ ids: [pruned], weights: ['w.q', 'w.k'], values: [[0.5, 0.25]] });
    expect(c.series.find((s) => s.kind === 'sensitivity')).toBeUndefined();
  });

  it('refuses fewer than 2 or more than 8 runs, a run named twice, and a baseline not among them', () => {
    const ids = Array.from({ length: 9 }, () => record({ metrics: [m('perplexity', 4, 'model')] }));
    const d = ids.map((id) => h.get(id));
    expect(code(() => compareExperiments(d.slice(0, 1)))).toBe('INVALID_INPUT');
    expect(code(() => compareExperiments(d))).toBe('INVALID_INPUT');
    expect(code(() => compareExperiments([d[0], d[0]]))).toBe('INVALID_INPUT');
    expect(code(() => compareExperiments(d.slice(0, 2), ids[5]))).toBe('INVALID_INPUT');
    expect(compareExperiments(d.slice(0, 8)).ids).toHaveLength(8);
  });
});
