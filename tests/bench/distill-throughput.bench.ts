/**
 * Distillation throughput on the llama2.c 15M shape (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000,
 * tied; random weights from tests/helpers/llama-onnx.ts) at B = 8, T = 256: the student is one random 15M
 * model, the teacher a second one (another seed). In one process, on the same text:
 *  - plain cross-entropy trainModel (the baseline of the same machine, same moment);
 *  - KD with the teacher's full-vocabulary logits from a live teacher session (forward KL, T = 2, α = 0.5);
 *  - the top-k cache: its build time and size on disk, then KD read from it;
 *  - the cache's effect on the loss (topkKlError on one batch; with random models the teacher's tempered
 *    distribution is nearly flat over 32,000 words, so k ids hold little of its mass — the worst case).
 * tokens/s are over the timed steps after the warm-up (onPoint timestamps), with the fastest step beside
 * them, since the machine is shared. For scale: PyTorch on a 2-core machine runs full-vocabulary KD on this
 * shape at 200–375 tokens/s (TRAINING.md, "Speed").
 *
 * Data: the first `paragraphs` paragraphs of moby-dick.txt tokenized with the all-MiniLM-L6-v2 WordPiece
 * (ids below 32000), so that the cache covers the run's whole text.
 *
 *   npm run bench distill-throughput   (options: --threads=2 --batch=8 --length=256 --steps=4 --warmup=1 --k=64 --paragraphs=300 --shape=15M)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distillationObjective, topkKlError } from '../../main/engine/distill/objective.ts';
import { openTeacher } from '../../main/engine/distill/teacher.ts';
import { buildTopkCache, TopkCache } from '../../main/engine/distill/topk-cache.ts';
import { splitDocuments } from '../../main/engine/data/text-file.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { TrainingData } from '../../main/engine/train/data.ts';
import type { TrainObjective } from '../../main/engine/train/objective.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig, TrainDetails } from '../../main/engine/train/types.ts';
import { fixture, STORIES } from '../helpers/fixtures.ts';
import { writeLlamaOnnx, type LlamaShape } from '../helpers/llama-onnx.ts';
import { option } from './helpers/bench-inputs.ts';

const SHAPES: Record<string, LlamaShape & { tokenizer: string }> = {
  '15M': { dim: 288, layers: 6, heads: 6, kvHeads: 6, hidden: 768, vocab: 32000, maxSeq: 256, tied: true, tokenizer: fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json') },
  '260K': { dim: 64, layers: 5, heads: 8, kvHeads: 4, hidden: 172, vocab: 512, maxSeq: 512, tied: true, tokenizer: STORIES.tokenizer },
};
const MiB = 2 ** 20;

const s = {
  threads: Number(option('threads', '2')), batch: Number(option('batch', '8')), length: Number(option('length', '256')),
  steps: Number(option('steps', '4')), warmup: Number(option('warmup', '1')), k: Number(option('k', '64')),
  paragraphs: Number(option('paragraphs', '300')), shape: option('shape', '15M'),
};

interface Timed { tokensPerSecond: number; fastest: number; details: TrainDetails }

async function timedRun(name: string, model: string, textPath: string, tokenizer: string, work: string, objective?: TrainObjective): Promise<Timed> {
  const config: TrainConfig = {
    textPath, tokenizerPath: tokenizer, steps: s.warmup + s.steps, batch: s.batch, length: s.length, accumulate: 1,
    lr: 3e-4, warmupSteps: 0, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 0, seed: 0, checkpointEvery: 1_000_000,
  };
  const at: number[] = [];
  const t0 = performance.now();
  const { details } = await trainModel({
    modelPath: model, outDir: path.join(work, `${name}-out`), deliver: 'final', checkpointDir: path.join(work, `${name}-ckpt`), resume: false, config, objective,
    onPoint: () => at.push(performance.now() - t0),
  }, quietContext(work));
  const tokens = s.batch * s.length;
  const stepMs = at.slice(s.warmup).map((t, i) => t - (at[s.warmup + i - 1] ?? 0));
  const total = stepMs.reduce((a, v) => a + v, 0);
  return { tokensPerSecond: (stepMs.length * tokens * 1000) / total, fastest: (tokens * 1000) / Math.min(...stepMs), details };
}

function line(label: string, r: Timed): void {
  const t = r.details.timing;
  const steps = r.details.steps;
  const per = (v: number): string => `${((v * 1000) / steps).toFixed(0)} ms`;
  const kl = r.details.curve.at(-1)?.parts?.kl;
  console.log(`${label}: ${r.tokensPerSecond.toFixed(0)} tokens/s over ${s.steps} steps after ${s.warmup} warm-up (fastest step ${r.fastest.toFixed(0)} tokens/s); `
    + `per step: teacher ${per(t.teacher)}, session ${per(t.session)}, optimizer ${per(t.optimizer)}; loss ${r.details.firstLoss.toFixed(3)} → ${r.details.finalLoss.toFixed(3)}`
    + (kl !== undefined ? `, KL ${kl.toFixed(4)}` : ''));
}

async function main(): Promise<void> {
  const shape = SHAPES[s.shape];
  if (!shape) throw new Error(`unknown shape '${s.shape}' (known: ${Object.keys(SHAPES).join(', ')})`);
  const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-distill-'));
  try {
    console.log(`${s.shape}: B = ${s.batch}, T = ${s.length}, ${s.warmup} warm-up + ${s.steps} steps, k = ${s.k}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
    const full = { ...shape, maxSeq: Math.max(shape.maxSeq, s.length), cache: false };
    mkdirSync(path.join(root, 'student'));
    mkdirSync(path.join(root, 'teacher'));
    const student = (await writeLlamaOnnx(path.join(root, 'student'), { ...full, seed: 1 })).model;
    const teacherPath = (await writeLlamaOnnx(path.join(root, 'teacher'), { ...full, seed: 2 })).model;
    const textPath = path.join(root, 'text.txt');
    writeFileSync(textPath, `${splitDocuments(readFileSync(fixture('text', 'moby-dick.txt'), 'utf8')).slice(0, s.paragraphs).join('\n\n')}\n`);
    const data = await TrainingData.load({ textPath, tokenizerPath: shape.tokenizer, batch: s.batch, length: s.length, seed: 0 });
    console.log(`text: ${data.tokens} tokens, ${data.sequences} sequences of ${s.length}`);

    line('cross-entropy (baseline)', await timedRun('ce', student, textPath, shape.tokenizer, root));

    line('KD, full teacher logits', await timedRun('kd', student, textPath, shape.tokenizer, root,
      distillationObjective({ teacher: { modelPath: teacherPath, scratchDir: root, threads: s.threads }, temperature: 2, alpha: 0.5 })));

    const teacher = await openTeacher(teacherPath, { batch: s.batch, length: s.length, scratchDir: root, threads: s.threads });
    const file = path.join(root, 'teacher.topk');
    try {
      const built = await buildTopkCache(teacher, data, { k: s.k, temperature: 2, file });
      const positions = data.sequences * s.length;
      console.log(`top-k cache: k = ${s.k}, ${positions} positions in ${built.seconds.toFixed(1)} s (${(positions / built.seconds).toFixed(0)} positions/s); `
        + `${(statSync(file).size / MiB).toFixed(1)} MiB on disk (${built.bytes} bytes = 128 + positions × ${8 * s.k + 4}; full logits would be ${((positions * shape.vocab * 4) / MiB).toFixed(0)} MiB)`);
      const cache = await TopkCache.open(file);
      try {
        const e = await topkKlError({ student, teacher, cache, data, scratchDir: root, alpha: 0.5, batches: 1 });
        console.log(`top-k effect on one batch: loss ${e.topkLoss.toFixed(4)} with the cache vs ${e.fullLoss.toFixed(4)} full (relative ${e.relativeLossError.toExponential(2)}); KL ${e.topkKl.toFixed(4)} vs ${e.fullKl.toFixed(4)}`);
      } finally {
        await cache.close();
      }
    } finally {
      await teacher.close();
    }
    line('KD, top-k cache', await timedRun('kd-topk', student, textPath, shape.tokenizer, root, distillationObjective({ cache: await TopkCache.open(file), temperature: 2, alpha: 0.5 })));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
