/**
 * Evaluation throughput of Whittle's perplexity code against a bare onnxruntime loop, in the same run.
 *
 * Workload: stories260K, documents protocol, L = 256, first 400 documents of TinyStories (38,675 predicted
 * tokens). The bare loop runs session.run over exactly the same rows with the same feeds (input_ids and
 * empty past tensors), builds nothing else and computes no log-softmax: it is the floor for what ORT costs.
 * Both run batch 1 and batched (the batches evaluatePerplexity picks, longest first, right-padded),
 * interleaved round by round (bare, Whittle, bare, …) so a busy machine slows both alike; the ratio is
 * the median of the per-round ratios. Whittle's time includes the scoring (the native logits kernel).
 *
 * Then the scoring kernel alone on a 32k vocabulary, per SIMD path, beside the JavaScript it replaced.
 *
 *   $N tests/bench/evaluate-throughput.bench.ts [threads=1] [rounds=5]
 */
import * as ort from 'onnxruntime-node';
import { readTextFile } from '../../main/engine/data/text-file.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { openDecoder, type DecoderLayout } from '../../main/engine/evaluate/decoder-session.ts';
import { compareRow } from '../../main/engine/evaluate/agreement.ts';
import { sequenceNll, tokenNll } from '../../main/engine/evaluate/log-softmax.ts';
import { cpuInfo, getThreads, rowCompare, rowNll, setSimdLimit } from '../../main/engine/native/index.ts';
import { evaluatePerplexity, perplexitySamples, planBatches, type PerplexitySettings } from '../../main/engine/evaluate/perplexity.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { STORIES } from '../helpers/fixtures.ts';

const threads = Number(process.argv[2] ?? 1);
const rounds = Number(process.argv[3] ?? 5);
const config: PerplexitySettings = { protocol: 'documents', window: 256, maxSamples: 400, minTokens: 16 };

const tokenizer = await loadTokenizer(STORIES.tokenizer);
const text = await readTextFile(STORIES.text);
const { samples } = perplexitySamples(text, tokenizer, config);
const predicted = samples.reduce((n, s) => n + s.length - 1, 0);

const decoder = await openDecoder(STORIES.model, { threads });
const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', executionMode: 'sequential' };
if (threads > 0) options.intraOpNumThreads = threads;
const session = await ort.InferenceSession.create(STORIES.model, options);

/** The hand-written loop: pad the rows, make input_ids and empty past tensors, run, drop the outputs. */
async function bare(layout: DecoderLayout, batchSize: number): Promise<number> {
  const order = samples.map((_, i) => i).sort((a, b) => samples[b].length - samples[a].length || a - b);
  const start = performance.now();
  for (let s = 0; s < order.length; s += batchSize) {
    const rows = order.slice(s, s + batchSize).map((i) => samples[i]);
    const seq = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(rows.length * seq);
    rows.forEach((r, b) => r.forEach((id, t) => { ids[b * seq + t] = BigInt(id); }));
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, [rows.length, seq]) };
    for (const slot of layout.cache) feeds[slot.past] = new ort.Tensor('float32', new Float32Array(0), slot.dims.map((d) => (d === 'batch' ? rows.length : d === 'past' ? 0 : d)));
    await session.run(feeds);
  }
  return (performance.now() - start) / 1000;
}

/** The float64 JavaScript log-softmax over the same batches (how evaluatePerplexity scored before the native kernel). */
async function jsScored(batchSize: number): Promise<number> {
  const plan = planBatches(samples, decoder.vocabSize, batchSize);
  const start = performance.now();
  let total = 0;
  for (const indices of plan.batches) {
    const rows = indices.map((i) => samples[i]);
    const { logits, seqLen } = await decoder.forwardBatch(rows);
    rows.forEach((ids, b) => { total += sequenceNll(logits, b * seqLen * decoder.vocabSize, decoder.vocabSize, ids); });
  }
  if (!Number.isFinite(total)) throw new Error('non-finite NLL');
  return (performance.now() - start) / 1000;
}

async function whittle(batchSize: number): Promise<{ seconds: number; perplexity: number }> {
  const r = await evaluatePerplexity(decoder, tokenizer, text, config, quietContext(process.cwd()), { batchSize });
  return { seconds: r.evalSeconds, perplexity: r.perplexity };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const batched = Math.min(16, Math.floor((64 * 1024 * 1024) / (256 * decoder.vocabSize * 4)));

console.log(`stories260K, documents L=256 N=400: ${samples.length} rows, ${predicted} predicted tokens; intra-op threads ${threads || 'default'}; ${rounds} rounds (median)`);
await bare(decoder.layout, 1);
await whittle(1); // warm-up
for (const batchSize of [1, batched]) {
  const bareRuns: number[] = [];
  const ourRuns: number[] = [];
  const ratios: number[] = [];
  const jsRatios: number[] = [];
  let perplexity = 0;
  for (let r = 0; r < rounds; r++) {
    const b = await bare(decoder.layout, batchSize);
    const ours = await whittle(batchSize);
    const js = await jsScored(batchSize);
    bareRuns.push(b);
    ourRuns.push(ours.seconds);
    ratios.push(b / ours.seconds);
    jsRatios.push(b / js);
    perplexity = ours.perplexity;
  }
  const bareTps = predicted / median(bareRuns);
  const ourTps = predicted / median(ourRuns);
  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`;
  console.log(`batch ${String(batchSize).padStart(2)}: bare onnxruntime ${bareTps.toFixed(0)} tokens/s | evaluatePerplexity ${ourTps.toFixed(0)} tokens/s | ratio ${median(ratios).toFixed(3)} (per round ${spread(ratios)}) | `
    + `JavaScript float64 scoring ratio ${median(jsRatios).toFixed(3)} (${spread(jsRatios)}); perplexity ${perplexity.toFixed(4)}`);
}
await decoder.release();
await session.release();

// The scoring kernel alone on a large vocabulary (no model): rows/s of NLL and of the two-model compare,
// per SIMD path, beside the float64 JavaScript of log-softmax.ts / agreement.ts.
{
  const vocab = 32_000;
  const rows = 256;
  const p = new Float32Array(rows * vocab);
  const q = new Float32Array(rows * vocab);
  for (let i = 0; i < p.length; i++) { p[i] = Math.sin(i * 0.013) * 6; q[i] = p[i] + Math.cos(i * 0.7) * 0.3; }
  const targets = Int32Array.from({ length: rows }, (_, r) => (r * 7919) % vocab);
  const best = async (fn: () => unknown): Promise<number> => {
    let t = Infinity;
    for (let r = 0; r < rounds; r++) { const s = performance.now(); await fn(); t = Math.min(t, performance.now() - s); }
    return t / 1000;
  };
  const line = (label: string, nll: number, pair: number) =>
    console.log(`  ${label.padEnd(28)} NLL ${(rows / nll).toFixed(0).padStart(7)} rows/s | compare ${(rows / pair).toFixed(0).padStart(7)} rows/s`);
  console.log(`scoring kernel, ${rows} rows × vocab ${vocab} (best of ${rounds}); kernel threads ${getThreads()}:`);
  const ids = Array.from(targets);
  line('JavaScript float64', await best(() => { for (let r = 0; r < rows; r++) tokenNll(p, r * vocab, vocab, ids[r]); }),
    await best(() => { for (let r = 0; r < rows; r++) compareRow(p, r * vocab, q, r * vocab, vocab); }));
  for (const path of ['baseline', 'avx2', 'avx512'] as const) {
    if (path !== 'baseline' && !cpuInfo()[path === 'avx2' ? 'avx2' : 'avx512']) continue;
    setSimdLimit(path);
    line(`native ${path}`, await best(() => rowNll(p, targets, vocab)), await best(() => rowCompare(p, q, targets, vocab)));
  }
  setSimdLimit('avx512');
}
