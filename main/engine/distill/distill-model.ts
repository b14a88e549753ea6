/**
 * One distillation run: the student (some of the teacher's blocks, or a model the user brings) trained by
 * trainModel with the distillation objective — the teacher's logits computed in the same step, or read
 * from a top-k cache built once before training — optionally through LoRA adapters.
 *
 * A student with MatMulNBits weights (an RTN or GPTQ result: recovery after quantization) trains as its
 * dequantized float model (train/quantized-student.ts): every quantized weight through fake quantization
 * on the grid it came with, written back as codes on the same scales and zero points; or, with LoRA, the
 * adapters over the frozen dequantized weights, merged and quantized again (RTN, or GPTQ with calibration).
 * Zero weights are not held at zero there (a zero is a code equal to its zero point, not a pruned weight).
 *
 * Before any work: the KD settings, the student's blocks against the teacher's, the vocabularies, and the
 * overlap of the evaluation text with the training text (a warning listed in the result). The student is
 * built into the job's scratch folder; the result is written in its (the teacher's) layout.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { isFloatDtype } from '../onnx/dtype.ts';
import { readModel } from '../onnx/reader.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import { TrainingData } from '../train/data.ts';
import { loraAdapter } from '../train/lora-adapter.ts';
import { FREEZE_ROLES, type ParameterRole } from '../train/parameters.ts';
import { qatAdapter } from '../train/qat-adapter.ts';
import type { ViewAdapter } from '../train/objective.ts';
import { gridAdapter, qloraAdapter } from '../train/quantized-adapter.ts';
import { gridTrainingIssue, hasMatMulNBits, writeDequantizedModel, type WeightGrid } from '../train/quantized-student.ts';
import { trainModel } from '../train/train-model.ts';
import { checkDistillationSettings } from './kd-head.ts';
import { hiddenDistillationObjective } from './hidden.ts';
import { distillationObjective, topkKlError } from './objective.ts';
import { overlapWarnings } from './preflight.ts';
import { checkBlockList, checkStudentCompatible, writeStudentByBlocks } from './student.ts';
import { openTeacher, type Teacher } from './teacher.ts';
import { buildTopkCache, TopkCache } from './topk-cache.ts';
import type { DistillDetails, DistillRequest, DistillResult } from './types.ts';
import { isLoraRole, type LoraRole } from '../train/lora-adapter.ts';

/** The float weights' element count of a model (its parameters). */
async function parameterCountOf(modelPath: string): Promise<{ blocks: number; parameters: number }> {
  const m = await readModel(modelPath);
  const arch = mapArchitecture(m);
  let parameters = 0;
  for (const t of m.proto.graph?.initializer ?? []) {
    const n = t.dims.reduce<number>((a, d) => a * Number(d), 1);
    if (n > 1 && (t.dataType === 1 || t.dataType === 10 || t.dataType === 16)) parameters += n;
  }
  return { blocks: arch.blocks.length, parameters };
}

/** Ops that hold or compute with integer weights: a model made of them has no float weights to train. */
const INTEGER_WEIGHT_OPS = new Set(['MatMulNBits', 'MatMulInteger', 'QLinearMatMul', 'DynamicQuantizeLinear', 'GatherBlockQuantized', 'QLinearConv', 'ConvInteger']);

/**
 * Whether the student has MatMulNBits weights (trained on their grid); INVALID_INPUT when they cannot be
 * trained so, and for other integer weights (INT8 QDQ, MatMulInteger, …), pointing to KD-QAT.
 */
async function quantizedStudent(studentPath: string): Promise<boolean> {
  const model = await readModel(studentPath);
  if (hasMatMulNBits(model)) {
    const issue = gridTrainingIssue(model);
    if (issue) throw new WhittleError('INVALID_INPUT', `The student ${path.basename(studentPath)} stores quantized weights that Whittle cannot train: ${issue}.`);
    return true;
  }
  const graph = model.proto.graph;
  const ints = new Set((graph?.initializer ?? []).filter((t) => t.dataType !== undefined && !isFloatDtype(t.dataType)).map((t) => t.name ?? ''));
  const found = (graph?.node ?? []).find((n) => INTEGER_WEIGHT_OPS.has(n.opType ?? '') || (n.opType === 'DequantizeLinear' && ints.has(n.input[0] ?? '')));
  if (found) {
    throw new WhittleError('INVALID_INPUT', `The student ${path.basename(studentPath)} stores quantized weights (${found.opType ?? ''} ${found.name ?? ''}); distillation trains float weights and MatMulNBits weights (RTN, GPTQ). `
      + 'Distil the float model, or quantize with KD-QAT (quantize --method qat), which trains through the quantization and distils from the original in one step.');
  }
  return false;
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

export async function distillModel(req: DistillRequest, ctx: JobContext): Promise<DistillResult> {
  const c = req.config;
  const { temperature, alpha, reverse } = req.loss;
  checkDistillationSettings({ temperature, alpha, teacher: req.signal });
  if (!(req.loss.hidden >= 0) || !Number.isFinite(req.loss.hidden)) throw new WhittleError('INVALID_INPUT', `The hidden-state weight must be 0 (off) or more (got ${req.loss.hidden}).`);
  if (req.loss.hidden > 0 && req.signal.kind === 'topk') {
    throw new WhittleError('INVALID_INPUT', "Hidden-state matching needs the teacher's hidden states at every step, which a top-k cache does not hold: distil with full teacher logits, or set the hidden weight to 0.");
  }
  const teacherPath = path.resolve(req.teacherPath);
  const teacherInfo = await parameterCountOf(teacherPath);
  if (req.student.kind === 'blocks') checkBlockList(req.student.blocks, teacherInfo.blocks);
  let loraRoles: LoraRole[] = [];
  if (req.lora && req.lora.rank > 0) {
    const unknown = req.lora.roles.filter((r) => !isLoraRole(r));
    if (unknown.length > 0) throw new WhittleError('INVALID_INPUT', `LoRA adapts the linear projections (q, k, v, o, qkv, gate, up, down); ${unknown.join(', ')} is not one of them.`);
    loraRoles = req.lora.roles as LoraRole[];
  }
  if (req.qat && loraRoles.length > 0) throw new WhittleError('INVALID_INPUT', 'Choose LoRA or quantization-aware training for one run, not both: merge the adapters first, then quantize.');
  if (req.qat) {
    const unknown = req.qat.freezeRoles.filter((r) => !(FREEZE_ROLES as readonly string[]).includes(r));
    if (unknown.length > 0) throw new WhittleError('INVALID_INPUT', `${unknown.join(', ')} is not a role Whittle knows (${FREEZE_ROLES.join(', ')}).`);
  }
  const warnings = await overlapWarnings(c.textPath, [c.evalTextPath], ctx.signal);
  for (const w of warnings) ctx.log('warn', w);

  const scratch = path.join(ctx.workDir, `.distill-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch, { recursive: true });
  let teacher: Teacher | null = null;
  let cache: TopkCache | null = null;
  try {
    // The student: the teacher's kept blocks (rebuilt identically on resume), or the model brought.
    let studentPath: string;
    let quantized = false;
    if (req.student.kind === 'blocks') {
      ctx.progress({ phase: 'load', done: 0, total: 1, message: `building the student (blocks ${req.student.blocks.join(', ')})` });
      const built = await writeStudentByBlocks(teacherPath, req.student.blocks, path.join(scratch, 'student'), ctx, { deliver: 'final', tokenizerPath: c.tokenizerPath });
      studentPath = built.modelPath;
    } else {
      studentPath = path.resolve(req.student.path);
      await checkStudentCompatible(teacherPath, studentPath, c.tokenizerPath);
      quantized = await quantizedStudent(studentPath);
    }
    // A MatMulNBits student trains as its dequantized model; `studentPath` stays the quantized one it is written back into.
    let trainPath = studentPath;
    let grids: Map<string, WeightGrid> | null = null;
    if (req.requantize && !(quantized && loraRoles.length > 0)) {
      throw new WhittleError('INVALID_INPUT', `Re-quantization applies to LoRA adapters merged into a quantized (MatMulNBits) student; ${quantized ? 'this run has no LoRA adapters' : `the student ${path.basename(studentPath)} is not quantized`}. Remove the requantize setting.`);
    }
    if (quantized) {
      if (req.qat) throw new WhittleError('INVALID_INPUT', `The student ${path.basename(studentPath)} is already quantized (MatMulNBits); KD-QAT quantizes a float model. Recover it without KD-QAT settings: it trains on its own grid.`);
      ctx.progress({ phase: 'load', done: 0, total: 1, message: 'dequantizing the student' });
      const deq = await writeDequantizedModel(studentPath, path.join(scratch, 'dequantized'), ctx, { deliver: 'final', tokenizerPath: c.tokenizerPath });
      trainPath = deq.folder.modelPath;
      grids = deq.grids;
      ctx.log('info', `student: ${grids.size} MatMulNBits weights trained ${loraRoles.length > 0 ? `through LoRA adapters, re-quantized with ${(req.requantize?.method ?? 'rtn').toUpperCase()}` : 'on their own grids (scales and zero points kept)'}`);
    }
    const studentInfo = await parameterCountOf(trainPath);

    // The teacher signal: a top-k cache built once (kept beside the checkpoints, so a resumed run reuses it).
    let cacheReport: { cacheBytes: number; cacheSeconds: number; klRelativeError?: number; lossRelativeError?: number } | null = null;
    if (req.signal.kind === 'topk') {
      const k = req.signal.k;
      await mkdir(req.checkpointDir, { recursive: true });
      const file = path.join(req.checkpointDir, `teacher-top${k}.bin`);
      const data = await TrainingData.load({ textPath: c.textPath, tokenizerPath: c.tokenizerPath, batch: c.batch, length: c.length, seed: c.seed, signal: ctx.signal });
      if (!(req.resume && await exists(file))) {
        teacher = await openTeacher(teacherPath, { batch: c.batch, length: c.length, scratchDir: path.join(scratch, 'teacher') });
        ctx.progress({ phase: 'teacher', done: 0, total: data.sequences, message: `top-${k} teacher cache` });
        const built = await buildTopkCache(teacher, data, {
          k, temperature, file, signal: ctx.signal,
          onProgress: (p) => ctx.progress({ phase: 'teacher', done: p.done, total: p.total, message: `top-${k} teacher cache` }),
        });
        cacheReport = { cacheBytes: built.bytes, cacheSeconds: built.seconds };
      }
      cache = await TopkCache.open(file);
      cache.assertFits(data, cache.header.vocab, temperature);
      if (teacher && cacheReport) {
        // What the cache changes: the student's loss on a few batches with the cache and with full teacher logits.
        const effect = await topkKlError({ student: trainPath, teacher, cache, data, scratchDir: scratch, alpha, reverse, batches: 2 });
        cacheReport = { ...cacheReport, klRelativeError: effect.relativeKlError, lossRelativeError: effect.relativeLossError };
        ctx.log('info', `top-${k} cache: ${(cacheReport.cacheBytes / 2 ** 20).toFixed(1)} MiB in ${cacheReport.cacheSeconds.toFixed(1)} s; the loss with it differs from full teacher logits by ${(100 * effect.relativeLossError).toFixed(2)} % (KL ${(100 * effect.relativeKlError).toFixed(2)} %)`);
      }
      cacheReport ??= { cacheBytes: (await stat(file)).size, cacheSeconds: 0 };
    }

    const objective = req.loss.hidden > 0 ? await hiddenDistillationObjective({
      teacherPath, studentPath: trainPath, kept: req.student.kind === 'blocks' ? req.student.blocks : null,
      temperature, alpha, reverse, weight: req.loss.hidden, scratchDir: scratch,
    }) : distillationObjective({
      teacher: teacher ?? { modelPath: teacherPath, scratchDir: path.join(scratch, 'teacher-session') },
      ...(cache ? { cache } : {}),
      temperature, alpha, reverse,
      keepOpen: true, // the teacher and cache opened here are closed here
    });
    const lora = loraRoles.length > 0 && req.lora ? { roles: loraRoles, rank: req.lora.rank, alpha: req.lora.alpha, seed: c.seed, dropout: req.lora.dropout ?? 0 } : null;
    let adapter: ViewAdapter | undefined;
    if (grids) {
      const requantize = req.requantize?.method === 'gptq' ? { ...req.requantize, tokenizerPath: c.tokenizerPath } : { method: 'rtn' as const };
      adapter = lora ? qloraAdapter(studentPath, grids, lora, requantize) : gridAdapter(studentPath, grids);
    } else if (req.qat) {
      adapter = qatAdapter({ bits: req.qat.bits, blockSize: req.qat.blockSize, symmetric: req.qat.symmetric, freezeRoles: req.qat.freezeRoles as ParameterRole[] });
    } else if (lora) {
      adapter = loraAdapter(lora);
    }
    const r = await trainModel({
      modelPath: trainPath, outDir: req.outDir, deliver: req.deliver, ...(req.recipe ? { recipe: req.recipe } : {}),
      checkpointDir: req.checkpointDir, resume: req.resume, config: grids ? { ...c, keepSparsity: false } : c, ...(req.onPoint ? { onPoint: req.onPoint } : {}),
      objective, ...(adapter ? { adapter } : {}),
    }, ctx);

    const details: DistillDetails = {
      ...r.details,
      teacher: { path: teacherPath, blocks: teacherInfo.blocks, parameters: teacherInfo.parameters },
      student: { blocks: studentInfo.blocks, keptBlocks: req.student.kind === 'blocks' ? [...req.student.blocks].sort((a, b) => a - b) : null, parameters: studentInfo.parameters },
      loss: { ...req.loss },
      signal: { ...req.signal, ...(cacheReport ?? {}) },
      ...(r.details.evalPartsBefore?.agree !== undefined ? { agreementBefore: r.details.evalPartsBefore.agree } : {}),
      ...(r.details.evalPartsAfter?.agree !== undefined ? { agreementAfter: r.details.evalPartsAfter.agree } : {}),
      warnings,
    };
    return { folder: r.folder, details };
  } finally {
    await teacher?.close();
    await cache?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
