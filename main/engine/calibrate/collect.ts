/**
 * Calibration: run the decoder over N sampled sequences and stream the activations that feed the
 * quantization/pruning targets into per-tensor statistics (accumulators.ts).
 *
 *   1. cheap checks first (validate.ts: tokenizer fits the model, text long enough; native kernel present
 *      when Hessians are asked for) — nothing is written and no session opened before they pass;
 *   2. the capture model (capture-plan.ts): the requested tensors as extra graph outputs, written to a
 *      scratch folder in the job's workDir with the weights hard-linked, one onnxruntime session on it;
 *   3. one batch at a time (default 1 × L): feed it as a fresh sequence (empty past, attention mask,
 *      position ids as the graph needs: decoderFeeds), fetch only the captured tensors, flatten each to
 *      [tokens × d], accumulate, drop. Progress per batch; cancellation checked between batches.
 * Memory: the model + the accumulators + one batch of activations, whatever N is.
 */
import path from 'node:path';
import type { z } from 'zod';
import type * as ort from 'onnxruntime-node';
import type { CalibrationConfig } from '../../../preload/recipe.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { createSession, decoderFeeds, detectDecoderLayoutFromSession } from '../evaluate/decoder-session.ts';
import { halfToFloat32 } from '../evaluate/fp16.ts';
import { consumerMap, initializerMap } from '../onnx/graph.ts';
import { readModel } from '../onnx/reader.ts';
import type { GraphProto } from '../onnx/proto-types.ts';
import { DataType } from '../onnx/dtype.ts';
import { ACCUMULATOR_KINDS, hessianKernel, TensorAccumulator, type AccumulatorKind, type TensorStats } from './accumulators.ts';
import { addCaptureOutputs, writeCaptureModel, type ActivationDtype } from './capture-plan.ts';
import { sampleCalibration } from './sampling.ts';
import { validateCalibration } from './validate.ts';

export interface CalibrationRequest {
  modelPath: string;
  /** Activation tensor names (activationInputsFor(...).map((a) => a.tensor)). */
  tensors: string[];
  accumulators: AccumulatorKind[];
  calibration: z.input<typeof CalibrationConfig>;
  tokenizerPath: string;
  /** Histogram bins (even); default 4096 over [−T, T], i.e. 2048 over |x| as ORT's Percentile. */
  histogramBins?: number;
  /** Sample only from the last part of the text (sampling.ts). */
  fromEnd?: number;
  /** Sequences per onnxruntime run (default 1). */
  batchSize?: number;
  /** Intra-op threads for onnxruntime; 0 = its default. */
  threads?: number;
}

export const DEFAULT_HISTOGRAM_BINS = 4096;
const PHASE = 'calibrate';

/** The element type of `name`: as declared, else the type of a MatMul/Gemm weight it is multiplied with. */
function activationDtype(graph: GraphProto, name: string): ActivationDtype | undefined {
  for (const v of [...graph.valueInfo, ...graph.input, ...graph.output]) {
    if (v.name !== name) continue;
    const t = v.type?.tensorType?.elemType;
    if (t === DataType.float32) return 'float32';
    if (t === DataType.float16) return 'float16';
  }
  const inits = initializerMap(graph);
  for (const n of consumerMap(graph).get(name) ?? []) {
    if ((n.opType !== 'MatMul' && n.opType !== 'Gemm') || n.input[0] !== name) continue;
    const w = inits.get(n.input[1] ?? '');
    if (w?.dataType === DataType.float32) return 'float32';
    if (w?.dataType === DataType.float16) return 'float16';
  }
  return undefined;
}

function checkRequest(req: CalibrationRequest): { bins: number; batchSize: number } {
  if (req.tensors.length === 0) throw new WhittleError('INVALID_INPUT', 'Calibration needs at least one activation tensor to capture.');
  if (req.accumulators.length === 0) throw new WhittleError('INVALID_INPUT', 'Calibration needs at least one statistic to collect (hessian, minmax, histogram or l2).');
  for (const a of req.accumulators) {
    if (!ACCUMULATOR_KINDS.includes(a)) throw new WhittleError('INVALID_INPUT', `Unknown calibration statistic '${String(a)}'; use ${ACCUMULATOR_KINDS.join(', ')}.`);
  }
  const bins = req.histogramBins ?? DEFAULT_HISTOGRAM_BINS;
  if (!Number.isInteger(bins) || bins < 2 || bins % 2 !== 0 || bins > 1 << 20) {
    throw new WhittleError('INVALID_INPUT', `Histogram bins must be an even whole number from 2 to ${1 << 20}; got ${bins}.`);
  }
  const batchSize = req.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new WhittleError('INVALID_INPUT', `The calibration batch size must be a whole number ≥ 1; got ${batchSize}.`);
  return { bins, batchSize };
}

/** float32 view of an onnxruntime output (float16 converted). */
function asFloat32(t: ort.Tensor, name: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return halfToFloat32(t.data as unknown as ArrayLike<number>);
  throw new WhittleError('UNSUPPORTED_MODEL', `Activation '${name}' is ${t.type}; calibration reads float32 or float16 activations.`, { tensor: name });
}

/** Streams the calibration text through the model and returns the statistics of every requested tensor. */
export async function collectCalibrationStats(req: CalibrationRequest, ctx: JobContext): Promise<Map<string, TensorStats>> {
  const { bins, batchSize } = checkRequest(req);
  throwIfAborted(ctx.signal);
  const tensors = [...new Set(req.tensors)];
  const model = await readModel(req.modelPath);
  const prepared = await validateCalibration({
    model, tokenizerPath: req.tokenizerPath, calibration: req.calibration, ...(req.fromEnd !== undefined ? { fromEnd: req.fromEnd } : {}),
  });
  if (req.accumulators.includes('hessian')) hessianKernel();
  const graph = model.proto.graph as GraphProto;
  const outputs = addCaptureOutputs(model.proto, tensors.map((tensor) => ({ tensor, dtype: activationDtype(graph, tensor) })));
  const samples = sampleCalibration(prepared.text, prepared.tokenizer, prepared.options);
  const accumulators = new Map(tensors.map((t) => [t, new TensorAccumulator(t, req.accumulators, bins)]));
  const L = prepared.calibration.length;
  throwIfAborted(ctx.signal);

  const files = await writeCaptureModel(model, ctx.workDir, ctx.signal);
  let session: ort.InferenceSession | null = null;
  try {
    if (files.mode === 'copied') ctx.log('warn', 'calibration: the model could not be hard-linked into the work folder (another file system?), so a full copy was written for the capture model');
    session = await createSession(files.modelPath, req.threads ?? 0);
    const layout = detectDecoderLayoutFromSession(session, req.modelPath);
    const fetches = tensors.map((t) => outputs.get(t) as string);
    ctx.progress({ phase: PHASE, done: 0, total: samples.length, message: `${samples.length} sequences of ${L} tokens, ${tensors.length} activations` });
    for (let start = 0; start < samples.length; start += batchSize) {
      throwIfAborted(ctx.signal);
      const rows = samples.slice(start, start + batchSize);
      const ids = new Array<number>(rows.length * L);
      rows.forEach((r, b) => { for (let t = 0; t < L; t++) ids[b * L + t] = r[t]; });
      let result: ort.InferenceSession.OnnxValueMapType;
      try {
        result = await session.run(decoderFeeds(layout, ids, rows.length, L, 0), fetches);
      } catch (e) {
        throw new WhittleError('UNSUPPORTED_MODEL', `onnxruntime failed to run ${path.basename(req.modelPath)} on the calibration text: ${((e as Error).message ?? String(e)).split('\n')[0]}`, { path: req.modelPath }, { cause: e });
      }
      for (const tensor of tensors) {
        const out = result[outputs.get(tensor) as string] as ort.Tensor;
        const d = out.dims.at(-1) ?? 0;
        await (accumulators.get(tensor) as TensorAccumulator).add(asFloat32(out, tensor), d);
      }
      ctx.progress({ phase: PHASE, done: start + rows.length, total: samples.length });
    }
  } finally {
    await session?.release().catch(() => undefined);
    await files.remove().catch(() => undefined);
  }
  return new Map([...accumulators].map(([t, a]) => [t, a.result()]));
}
