/**
 * Distillation as a training objective (train/objective.ts): the KD head on the student's logits and,
 * per micro-batch, the teacher signal it reads — the teacher's logits from a live session, or the rows of
 * a top-k cache (batches of other text, such as the held-out loss, then ask the teacher for their top-k).
 * And the report of what the cache changes: the loss over a few batches with the cache and with the full
 * teacher logits.
 */
import { mkdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { WhittleError } from '../errors.ts';
import { readModel } from '../onnx/reader.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import type { TrainBatch, TrainingData } from '../train/data.ts';
import type { TrainObjective } from '../train/objective.ts';
import { StepSession, type Batch } from '../train/session.ts';
import { compileEvalStep } from '../train/step-graph.ts';
import { buildTrainingView, type TrainingView } from '../train/view.ts';
import { checkDistillationSettings, DEFAULT_ALPHA, DEFAULT_TEMPERATURE, distillationHead, TEACHER_LOGITS, TEACHER_REST_LOGP, TEACHER_TOPK_IDS, TEACHER_TOPK_LOGP } from './kd-head.ts';
import { assertSameTokenizer, assertSameVocabulary, openTeacher, type Teacher } from './teacher.ts';
import type { TopkCache } from './topk-cache.ts';

export interface DistillationObjectiveOptions {
  /** The teacher: an open session, or a model opened by prepare() for the student's batch × length. */
  teacher?: Teacher | { modelPath: string; scratchDir: string; threads?: number };
  /** A built top-k cache of the training text: training batches read it instead of running the teacher. */
  cache?: TopkCache;
  /** T (default 2); with a cache it must be the cache's. */
  temperature?: number;
  /** α (default 0.5). */
  alpha?: number;
  /** Reverse KL (student ‖ teacher). */
  reverse?: boolean;
  /** Both tokenizer files, checked to be the same content by prepare(). */
  tokenizers?: { teacher: string; student: string };
  /** Leave a teacher or cache passed in open at close() (the caller closes them). */
  keepOpen?: boolean;
}

const isTeacher = (t: DistillationObjectiveOptions['teacher']): t is Teacher => t !== undefined && 'logits' in t;

function topkTensors(rows: { ids: BigInt64Array; logp: Float32Array; rest: Float32Array }, view: Pick<TrainingView, 'batch' | 'length'>, k: number): Record<string, ort.Tensor> {
  const dims = [view.batch, view.length];
  return {
    [TEACHER_TOPK_IDS]: new ort.Tensor('int64', rows.ids, [...dims, k]),
    [TEACHER_TOPK_LOGP]: new ort.Tensor('float32', rows.logp, [...dims, k]),
    [TEACHER_REST_LOGP]: new ort.Tensor('float32', rows.rest, [...dims, 1]),
  };
}

/** KD objective (see the header). Give a teacher, a cache, or both (the teacher then serves batches the cache does not hold). */
export function distillationObjective(options: DistillationObjectiveOptions): TrainObjective {
  const { cache } = options;
  if (!options.teacher && !cache) throw new WhittleError('INVALID_INPUT', 'Distillation needs a teacher: a teacher model, or a top-k cache built from one.');
  const temperature = options.temperature ?? cache?.header.temperature ?? DEFAULT_TEMPERATURE;
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  checkDistillationSettings({ temperature, alpha });
  if (cache && cache.header.temperature !== temperature) {
    throw new WhittleError('INVALID_INPUT', `The top-k teacher cache holds log-probabilities at temperature ${cache.header.temperature}, but the run distils at ${temperature}. Build the cache at ${temperature}, or distil at ${cache.header.temperature}.`);
  }
  let teacher: Teacher | null = isTeacher(options.teacher) ? options.teacher : null;
  let shape: Pick<TrainingView, 'batch' | 'length' | 'vocab'> | null = null;
  const checkTeacher = (student: Pick<TrainingView, 'batch' | 'length' | 'vocab'>): void => {
    if (!teacher) return;
    assertSameVocabulary(teacher.view, student);
    if (teacher.view.batch !== student.batch || teacher.view.length !== student.length) {
      throw new WhittleError('INTERNAL', `The teacher was opened for batches of ${teacher.view.batch} × ${teacher.view.length} tokens, the student trains on ${student.batch} × ${student.length}.`);
    }
  };
  return {
    head(view) {
      if (cache) assertSameVocabulary({ vocab: cache.header.vocab }, view);
      checkTeacher(view);
      shape = view;
      return distillationHead({
        batch: view.batch, length: view.length, vocab: view.vocab, temperature, alpha, reverse: options.reverse,
        teacher: cache ? { kind: 'topk', k: cache.k } : { kind: 'logits' },
      });
    },
    async prepare(view) {
      if (options.tokenizers) await assertSameTokenizer(options.tokenizers.teacher, options.tokenizers.student);
      if (!teacher && options.teacher && !isTeacher(options.teacher)) {
        const t = options.teacher;
        teacher = await openTeacher(t.modelPath, { batch: view.batch, length: view.length, scratchDir: t.scratchDir, threads: t.threads });
      }
      checkTeacher(view);
    },
    async feeds(batch: Batch) {
      const b = batch as TrainBatch;
      if (cache && b.sequences && b.source === cache.header.dataFingerprint) return cache.rows(b.sequences);
      if (!teacher) {
        if (cache) return cache.feeds(b);
        throw new WhittleError('INTERNAL', 'The distillation objective was not prepared: its teacher is not open.');
      }
      if (cache) {
        if (!shape) throw new WhittleError('INTERNAL', 'The distillation objective has no head yet.');
        return topkTensors(await teacher.topk(batch, cache.k, temperature), shape, cache.k);
      }
      return { [TEACHER_LOGITS]: await teacher.logits(batch) };
    },
    async close() {
      if (options.keepOpen && isTeacher(options.teacher)) return;
      await teacher?.close();
      teacher = null;
      if (!options.keepOpen) await cache?.close();
    },
  };
}

export interface TopkErrorReport {
  batches: number;
  tokens: number;
  /** Per counted token: the loss and the KL with the full teacher logits and with the cache. */
  fullLoss: number;
  topkLoss: number;
  fullKl: number;
  topkKl: number;
  /** |topk − full| / full. */
  relativeLossError: number;
  relativeKlError: number;
}

/**
 * The cache's effect on the loss: the student (a model file) scored on the first `batches` batches of
 * `data` (text order) with the full teacher logits and with the cache's rows.
 */
export async function topkKlError(options: {
  student: string; teacher: Teacher; cache: TopkCache; data: TrainingData; scratchDir: string;
  alpha?: number; reverse?: boolean; batches?: number;
}): Promise<TopkErrorReport> {
  const { teacher, cache, data } = options;
  const temperature = cache.header.temperature;
  const source = await readModel(options.student);
  const dir = path.join(options.scratchDir, `.topk-error-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  try {
    const view = await buildTrainingView(source, mapArchitecture(source), { batch: data.batch, length: data.length, inference: true, frozen: () => true, scratchDir: dir });
    assertSameVocabulary(teacher.view, view);
    cache.assertFits(data, view.vocab, temperature);
    const head = (kind: 'logits' | 'topk') => distillationHead({
      batch: view.batch, length: view.length, vocab: view.vocab, temperature, alpha: options.alpha, reverse: options.reverse,
      teacher: kind === 'logits' ? { kind } : { kind, k: cache.k },
    });
    const full = await StepSession.open(compileEvalStep(view, head('logits')), [], [], [view.batch, view.length], path.join(dir, 'full'));
    const topk = await StepSession.open(compileEvalStep(view, head('topk')), [], [], [view.batch, view.length], path.join(dir, 'topk'));
    try {
      const sums = { tokens: 0, fullLoss: 0, topkLoss: 0, fullKl: 0, topkKl: 0 };
      let batches = 0;
      for (const batch of data.inOrder()) {
        if (batches >= (options.batches ?? 4)) break;
        const a = await full.run(batch, { [TEACHER_LOGITS]: await teacher.logits(batch) });
        const b = await topk.run(batch, await cache.feeds(batch));
        sums.tokens += a.tokenCount;
        sums.fullLoss += a.lossSum;
        sums.topkLoss += b.lossSum;
        sums.fullKl += a.parts.kl;
        sums.topkKl += b.parts.kl;
        batches++;
      }
      const per = (x: number): number => (sums.tokens > 0 ? x / sums.tokens : Number.NaN);
      const rel = (x: number, ref: number): number => Math.abs(x - ref) / Math.max(Math.abs(ref), 1e-12);
      return {
        batches, tokens: sums.tokens, fullLoss: per(sums.fullLoss), topkLoss: per(sums.topkLoss), fullKl: per(sums.fullKl), topkKl: per(sums.topkKl),
        relativeLossError: rel(sums.topkLoss, sums.fullLoss), relativeKlError: rel(sums.topkKl, sums.fullKl),
      };
    } finally {
      await full.close();
      await topk.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
