/**
 * Training throughput on the llama2.c 15M shape (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000,
 * tied embedding, random weights; tests/helpers/llama-onnx.ts) at B = 8, T = 256, plain cross-entropy,
 * and the same line for the stories260K shape. For scale: PyTorch on a 2-core machine trains the 15M shape
 * at 485–680 tokens/s (TRAINING.md, "Speed").
 *
 * Per shape, in one run:
 *  - the forward floor: a bare onnxruntime session of the generated model (no cache) on B × T tokens, the
 *    feed built from the token ids (copy in) and the logits [B, T, V] read back (copy out) timed apart;
 *  - trainModel: 1 warm-up step then `steps` timed steps in a child process (so its peak RSS is the
 *    training's own), tokens/s over the timed steps, peak RSS (VmHWM), and its own split of the time
 *    (TrainDetails.timing: data, session, optimizer, …);
 *  - the session's share split further, in another child: the same train-step graph and its forward-only
 *    (loss) graph, built as trainModel builds them, run under onnxruntime's profiler. Forward = the loss
 *    graph's model_run, backward = the train graph's model_run − forward, copies in and out = the
 *    train graph's session.run wall time − its model_run (the binding's feeds and the gradients it
 *    copies back into JavaScript). Each the fastest of its runs after the warm-up: the machine is shared.
 *
 * Data: moby-dick.txt. The 15M shape's vocabulary is 32000, so its text is tokenized with the
 * all-MiniLM-L6-v2 WordPiece (30522 ids, all below 32000; GPT-2's 50257 would not fit); the stories260K
 * shape uses its own 512-token tokenizer. The data does not change the speed.
 *
 *   npm run bench train-throughput   (options: --threads=2 --batch=8 --length=256 --steps=6 --warmup=1 --shapes=15M,260K)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import type { TrainConfig, TrainDetails } from '../../main/engine/train/types.ts';
import { fixture, STORIES } from '../helpers/fixtures.ts';
import { writeLlamaOnnx, type LlamaShape } from '../helpers/llama-onnx.ts';
import { option } from './helpers/bench-inputs.ts';

const SHAPES: Record<string, LlamaShape & { tokenizer: string }> = {
  '15M': { dim: 288, layers: 6, heads: 6, kvHeads: 6, hidden: 768, vocab: 32000, maxSeq: 256, tied: true, tokenizer: fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json') },
  '260K': { dim: 64, layers: 5, heads: 8, kvHeads: 4, hidden: 172, vocab: 512, maxSeq: 512, tied: true, tokenizer: STORIES.tokenizer },
};
const TEXT = fixture('text', 'moby-dick.txt');
const MiB = 2 ** 20;

interface BenchSettings { threads: number; batch: number; length: number; steps: number; warmup: number }

interface ChildReport {
  error?: string;
  details?: TrainDetails;
  /** ms from the start of trainModel to each optimizer step's point. */
  pointMs: number[];
  maxRssKb: number;
  startRssKb: number;
}

/**
 * Peak RSS in kB: VmHWM of this process's own memory. (process.resourceUsage().maxRSS is Linux's
 * getrusage maximum, which a child started by fork + exec inherits from its parent's peak.)
 */
function peakRssKb(): number {
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS;
}

/** The fastest run: on a shared machine the least disturbed one. */
const best = (xs: number[]): number => Math.min(...xs);

/** One trainModel run on `model`; runs in the child process. */
async function trainChild(model: string, tokenizer: string, work: string, s: BenchSettings): Promise<ChildReport> {
  const startRssKb = peakRssKb();
  const config: TrainConfig = {
    textPath: TEXT, tokenizerPath: tokenizer, steps: s.warmup + s.steps, batch: s.batch, length: s.length, accumulate: 1,
    lr: 3e-4, warmupSteps: 0, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false,
    evalEvery: 0, seed: 0, checkpointEvery: 1_000_000,
  };
  const pointMs: number[] = [];
  const t0 = performance.now();
  try {
    // Loaded here: the parent process measures the bare forward without the training engine.
    const { trainModel } = await import('../../main/engine/train/train-model.ts');
    const { details } = await trainModel({
      modelPath: model, outDir: path.join(work, 'out'), deliver: 'final', checkpointDir: path.join(work, 'checkpoints'), resume: false, config,
      onPoint: () => pointMs.push(performance.now() - t0),
    }, quietContext(work));
    return { details, pointMs, maxRssKb: peakRssKb(), startRssKb };
  } catch (e) {
    return { error: (e as Error).message, pointMs, maxRssKb: peakRssKb(), startRssKb };
  }
}

/** Fastest times of the bare forward: feed from ids (copy in), session.run, logits read back (copy out). */
async function forwardFloor(model: string, s: BenchSettings, vocab: number): Promise<{ inMs: number; runMs: number; outMs: number }> {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: s.threads });
  const ids = Int32Array.from({ length: s.batch * s.length }, (_, i) => (i * 7919) % vocab);
  const times = { inMs: [] as number[], runMs: [] as number[], outMs: [] as number[] };
  let sink = 0;
  try {
    for (let round = 0; round < s.warmup + s.steps; round++) {
      const a = performance.now();
      const feed = new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [s.batch, s.length]);
      const b = performance.now();
      const out = await session.run({ input_ids: feed });
      const c = performance.now();
      const logits = Float32Array.from(out.logits.data as Float32Array);
      sink += logits[logits.length - 1];
      const d = performance.now();
      if (round >= s.warmup) {
        times.inMs.push(b - a);
        times.runMs.push(c - b);
        times.outMs.push(d - c);
      }
    }
  } finally {
    await session.release();
  }
  if (!Number.isFinite(sink)) throw new Error('the forward gave non-finite logits');
  return { inMs: best(times.inMs), runMs: best(times.runMs), outMs: best(times.outMs) };
}

interface SplitReport { forwardMs: number; trainRunMs: number; trainWallMs: number; gradientMiB: number }

/** Fastest model_run (µs → ms) of the profiled runs after the warm-up ones. */
function modelRunMs(profileFile: string, warmup: number): number {
  const events = JSON.parse(readFileSync(profileFile, 'utf8')) as { cat: string; name: string; dur: number }[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur / 1000);
  return best(runs.slice(warmup));
}

/** The train-step graph and its loss-only twin, as trainModel builds them, timed under the profiler; runs in a child. */
async function splitChild(model: string, work: string, s: BenchSettings): Promise<SplitReport> {
  // Loaded here, like trainModel: the parent process runs without the training engine.
  const { buildTrainingView } = await import('../../main/engine/train/view.ts');
  const { crossEntropyHead, LABELS } = await import('../../main/engine/train/loss-head.ts');
  const { compileEvalStep, compileTrainStep } = await import('../../main/engine/train/step-graph.ts');
  const { TRAINING_GRAPH_OPTIMIZATION } = await import('../../main/engine/train/session.ts');
  const source = await readModel(model);
  const view = await buildTrainingView(source, mapArchitecture(source), { batch: s.batch, length: s.length, frozen: () => false, scratchDir: work });
  const head = crossEntropyHead(s.batch, s.length, view.vocab);
  const tokens = s.batch * s.length;
  const ids = Array.from({ length: tokens }, (_, i) => (i * 7919) % view.vocab);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: view.inputIds.dtype === DataType.int32 ? new ort.Tensor('int32', Int32Array.from(ids), [s.batch, s.length]) : new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [s.batch, s.length]),
    [LABELS]: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt((v * 31 + 7) % view.vocab)), [s.batch, s.length]),
  };
  for (const p of view.trainable) feeds[p.name] = new ort.Tensor('float32', view.initial.get(p.name) ?? new Float32Array(0), p.dims);
  const timeGraph = async (name: string, graph: ReturnType<typeof compileTrainStep>): Promise<{ runMs: number; wallMs: number }> => {
    const file = path.join(work, `${name}.onnx`);
    await writeModel(graph.model, file, { externalData: 'auto' });
    const session = await ort.InferenceSession.create(file, {
      graphOptimizationLevel: TRAINING_GRAPH_OPTIMIZATION, executionMode: 'sequential', enableMemPattern: true, enableCpuMemArena: true,
      intraOpNumThreads: s.threads, enableProfiling: true, profileFilePrefix: path.join(work, `profile-${name}`),
    });
    const walls: number[] = [];
    try {
      for (let round = 0; round < s.warmup + s.steps; round++) {
        const t = performance.now();
        const out = await session.run(feeds);
        walls.push(performance.now() - t);
        if (!Number.isFinite((out[graph.lossSum].data as Float32Array)[0])) throw new Error(`the ${name} graph gave a non-finite loss`);
      }
      session.endProfiling();
    } finally {
      await session.release();
    }
    const profile = readdirSync(work).find((f) => f.startsWith(`profile-${name}`));
    if (!profile) throw new Error(`onnxruntime wrote no profile for the ${name} graph`);
    return { runMs: modelRunMs(path.join(work, profile), s.warmup), wallMs: best(walls.slice(s.warmup)) };
  };
  const forward = await timeGraph('loss', compileEvalStep(view, head));
  const train = await timeGraph('train', compileTrainStep(view, head));
  const gradientFloats = view.trainable.reduce((n, p) => n + p.dims.reduce((a, b) => a * b, 1), 0);
  return { forwardMs: forward.runMs, trainRunMs: train.runMs, trainWallMs: train.wallMs, gradientMiB: (gradientFloats * 4) / MiB };
}

function printTraining(label: string, r: ChildReport, s: BenchSettings): void {
  const tokensPerStep = s.batch * s.length;
  const peak = `peak RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB (${(r.startRssKb / 1024).toFixed(0)} MiB before)`;
  if (r.error !== undefined) {
    console.log(`${label} trainModel failed after ${r.pointMs.length} steps: ${r.error}; ${peak}`);
    process.exitCode = 1;
    return;
  }
  const timed = r.pointMs.slice(s.warmup - 1);
  const seconds = s.warmup > 0 && timed.length > 1 ? (timed[timed.length - 1] - timed[0]) / 1000 : r.pointMs[r.pointMs.length - 1] / 1000;
  const steps = s.warmup > 0 ? timed.length - 1 : r.pointMs.length;
  const rate = (steps * tokensPerStep) / seconds;
  const stepMs = r.pointMs.slice(s.warmup).map((t, i) => t - (r.pointMs[s.warmup + i - 1] ?? 0));
  const d = r.details;
  console.log(`${label} trainModel: ${rate.toFixed(0)} tokens/s over ${steps} steps after ${s.warmup} warm-up (${((seconds * 1000) / steps).toFixed(0)} ms/step; ` +
    `fastest step ${best(stepMs).toFixed(0)} ms = ${((tokensPerStep * 1000) / best(stepMs)).toFixed(0)} tokens/s); ` +
    `its own figure ${d?.tokensPerSecond.toFixed(0) ?? '?'} tokens/s; loss ${d?.firstLoss.toFixed(3) ?? '?'} → ${d?.finalLoss.toFixed(3) ?? '?'}; ${peak}`);
  // trainModel's own split: seconds per phase over all its steps (the warm-up included), shown per step.
  if (d) {
    const all = r.pointMs.length;
    const parts = Object.entries(d.timing).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${((v * 1000) / all).toFixed(0)} ms`);
    console.log(`${label}   trainModel's split per step (mean of all ${all}): ${parts.join(', ')}`);
  }
}

function printSplit(label: string, r: SplitReport): void {
  const backward = r.trainRunMs - r.forwardMs;
  const copies = r.trainWallMs - r.trainRunMs;
  console.log(`${label}   session per step: forward + loss ${r.forwardMs.toFixed(0)} ms, backward ${backward.toFixed(0)} ms (train graph ${r.trainRunMs.toFixed(0)} ms in onnxruntime), ` +
    `copies in/out ${copies.toFixed(0)} ms (${r.gradientMiB.toFixed(0)} MiB of gradients back); backward/forward ${(backward / r.forwardMs).toFixed(2)}`);
}

async function main(): Promise<void> {
  const s: BenchSettings = {
    threads: Number(option('threads', '2')), batch: Number(option('batch', '8')), length: Number(option('length', '256')),
    steps: Number(option('steps', '6')), warmup: Number(option('warmup', '1')),
  };
  const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-train-'));
  try {
    console.log(`B = ${s.batch}, T = ${s.length}, ${s.threads} threads, ${s.warmup} warm-up + ${s.steps} steps, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
    for (const name of option('shapes', '15M,260K').split(',')) {
      const shape = SHAPES[name];
      if (!shape) throw new Error(`unknown shape '${name}' (known: ${Object.keys(SHAPES).join(', ')})`);
      const dir = path.join(root, name);
      mkdirSync(dir);
      const { model, params } = await writeLlamaOnnx(dir, { ...shape, maxSeq: Math.max(shape.maxSeq, s.length), seed: 1, cache: false });
      const label = `[${name}]`;
      console.log(`${label} dim ${shape.dim}, ${shape.layers} layers, ${shape.heads}/${shape.kvHeads} heads, hidden ${shape.hidden}, vocab ${shape.vocab}: ${(params / 1e6).toFixed(2)} M parameters`);

      const f = await forwardFloor(model, s, shape.vocab);
      const tokens = s.batch * s.length;
      console.log(`${label} bare forward: ${f.runMs.toFixed(0)} ms (${((tokens * 1000) / f.runMs).toFixed(0)} tokens/s forward only); ` +
        `copy in ${f.inMs.toFixed(1)} ms, logits out ${f.outMs.toFixed(1)} ms (${((tokens * shape.vocab * 4) / MiB).toFixed(0)} MiB)`);

      const work = path.join(dir, 'work');
      mkdirSync(work);
      const stdout = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), '--child', model, shape.tokenizer, work, JSON.stringify(s)], {
        encoding: 'utf8', maxBuffer: 64 * MiB, stdio: ['ignore', 'pipe', 'inherit'],
      });
      printTraining(label, JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as ChildReport, s);
      const splitWork = path.join(dir, 'split');
      mkdirSync(splitWork);
      const split = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), '--split', model, shape.tokenizer, splitWork, JSON.stringify(s)], {
        encoding: 'utf8', maxBuffer: 64 * MiB, stdio: ['ignore', 'pipe', 'inherit'],
      });
      printSplit(label, JSON.parse(split.trim().split('\n').pop() ?? '{}') as SplitReport);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const mode = process.argv.findIndex((a) => a === '--child' || a === '--split');
if (mode >= 0) {
  const [model, tokenizer, work, settings] = process.argv.slice(mode + 1);
  const s = JSON.parse(settings) as BenchSettings;
  console.log(JSON.stringify(process.argv[mode] === '--child' ? await trainChild(model, tokenizer, work, s) : await splitChild(model, work, s)));
} else {
  await main();
}
