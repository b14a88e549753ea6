/**
 * Importance of the parts a structured prune can remove: scores[block][part] (heads: per KV group;
 * neurons: per MLP hidden unit; layers: one score per block). Lower is less important.
 *
 *   magnitude        L2 norm of the part's weights: KV group g → ‖q cols, k cols, v cols, o rows of g‖₂;
 *                    neuron j → ‖gate col j, up col j, down row j‖₂; block → ‖W_o, W_down‖₂ (what it writes
 *                    to the residual stream).
 *   activation       calibration statistics (calibrate/ 'l2': Σ x_c² per input channel c) of the inputs
 *                    of o and down, weighted by the rows they multiply (as Wanda, arXiv 2306.11695):
 *                    neuron j → ‖x_j‖₂·‖down row j‖₂; group g → (Σ_{c ∈ g} ‖x_c‖₂²·‖o row c‖₂²)^½;
 *                    block → the same over all of o's and down's channels.
 *   block-influence  ShortGPT (arXiv 2403.03853): BI_b = 1 − E_tokens[cos(x_b, x_{b+1})] with x_b the
 *                    residual stream entering block b and x_{b+1} the stream leaving it (the sum its
 *                    closing join forms), captured as extra graph outputs on calibration text.
 *   taylor           LLM-Pruner's first-order |Σ w·∂L/∂w| over the same groups: taylor-importance.ts.
 */
import type * as ort from 'onnxruntime-node';
import type { z } from 'zod';
import type { CalibrationConfig } from '../../../preload/recipe.ts';
import { collectCalibrationStats } from '../calibrate/collect.ts';
import { addCaptureOutputs, writeCaptureModel } from '../calibrate/capture-plan.ts';
import { sampleCalibration } from '../calibrate/sampling.ts';
import { validateCalibration } from '../calibrate/validate.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { createSession, decoderFeeds, detectDecoderLayoutFromSession } from '../evaluate/decoder-session.ts';
import { halfToFloat32 } from '../evaluate/fp16.ts';
import type { JobContext } from '../job-context.ts';
import { consumerMap } from '../onnx/graph.ts';
import type { GraphProto, OnnxModel, TensorProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { bytesToFloat32, elementCount } from '../onnx/tensor-data.ts';
import type { ArchitectureMap } from '../rewrite/architecture.ts';
import type { WeightReader } from '../rewrite/weight-reader.ts';
import type { StructuredTarget } from './structured-plan.ts';

/** A 2-D weight as float32, row-major [rows, cols]. */
interface Matrix { rows: number; cols: number; data: Float32Array }

async function matrix(graph: GraphProto, reader: WeightReader, name: string): Promise<Matrix> {
  const t = graph.initializer.find((x) => x.name === name) as TensorProto | undefined;
  if (!t) throw new WhittleError('UNSUPPORTED_MODEL', `Weight '${name}' is not an initializer of the main graph.`, { weight: name });
  const dims = t.dims.map(Number);
  const data = bytesToFloat32(await reader.read(t), t.dataType, elementCount(t.dims));
  return { rows: dims[0], cols: dims[1] ?? 1, data: Float32Array.from(data) };
}

/** Σ w² of each column. */
export function columnSquares(m: Matrix): Float64Array {
  const out = new Float64Array(m.cols);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.cols; c++) out[c] += m.data[r * m.cols + c] ** 2;
  return out;
}

/** Σ w² of each row. */
export function rowSquares(m: Matrix): Float64Array {
  const out = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.cols; c++) out[r] += m.data[r * m.cols + c] ** 2;
  return out;
}

/** Sums of `v` over consecutive runs of `width`. */
const groups = (v: ArrayLike<number>, width: number): number[] => Array.from({ length: Math.floor(v.length / width) }, (_, g) => {
  let s = 0;
  for (let i = g * width; i < (g + 1) * width; i++) s += v[i];
  return s;
});

/** Magnitude importance (see the header), weights read one at a time. */
export async function magnitudeScores(graph: GraphProto, map: ArchitectureMap, target: StructuredTarget, reader: WeightReader): Promise<number[][]> {
  const scores: number[][] = [];
  for (const b of map.blocks) {
    if (target === 'neurons') {
      const m = b.mlp;
      const s = columnSquares(await matrix(graph, reader, m.up!));
      if (m.gate) columnSquares(await matrix(graph, reader, m.gate)).forEach((x, j) => { s[j] += x; });
      rowSquares(await matrix(graph, reader, m.down!)).forEach((x, j) => { s[j] += x; });
      scores.push(Array.from(s, Math.sqrt));
    } else if (target === 'heads') {
      const a = b.attention;
      const d = a.headSize!, G = a.heads! / a.kvHeads!;
      const q = groups(columnSquares(await matrix(graph, reader, a.q!)), G * d);
      const o = groups(rowSquares(await matrix(graph, reader, a.o!)), G * d);
      const k = groups(columnSquares(await matrix(graph, reader, a.k!)), d);
      const v = groups(columnSquares(await matrix(graph, reader, a.v!)), d);
      scores.push(q.map((x, g) => Math.sqrt(x + o[g] + k[g] + v[g])));
    } else {
      const o = rowSquares(await matrix(graph, reader, b.attention.o!));
      const down = rowSquares(await matrix(graph, reader, b.mlp.down!));
      scores.push([Math.sqrt([...o, ...down].reduce((x, y) => x + y, 0))]);
    }
  }
  return scores;
}

/** The activation input of the projection reading `weight` (its A operand). */
function projectionInput(graph: GraphProto, weight: string): string {
  const r = (consumerMap(graph).get(weight) ?? []).find((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
  if (!r) throw new WhittleError('UNSUPPORTED_MODEL', `No MatMul reads the weight '${weight}'.`, { weight });
  return r.input[0];
}

export interface CalibrationSource {
  modelPath: string;
  calibration: z.input<typeof CalibrationConfig>;
  tokenizerPath: string;
}

/** Activation importance (see the header): one calibration pass collecting 'l2' of o's and down's inputs. */
export async function activationScores(model: OnnxModel, map: ArchitectureMap, target: StructuredTarget, reader: WeightReader, src: CalibrationSource, ctx: JobContext): Promise<number[][]> {
  const graph = model.proto.graph!;
  const wanted = map.blocks.map((b) => ({ o: projectionInput(graph, b.attention.o!), down: projectionInput(graph, b.mlp.down!) }));
  const tensors = target === 'heads' ? wanted.map((w) => w.o) : target === 'neurons' ? wanted.map((w) => w.down) : wanted.flatMap((w) => [w.o, w.down]);
  const stats = await collectCalibrationStats({ modelPath: src.modelPath, tensors, accumulators: ['l2'], calibration: src.calibration, tokenizerPath: src.tokenizerPath }, ctx);
  const l2 = (t: string): Float64Array => stats.get(t)!.l2!;
  const scores: number[][] = [];
  for (const [i, b] of map.blocks.entries()) {
    const weighted = async (weight: string, tensor: string): Promise<Float64Array> => {
      const rows = rowSquares(await matrix(graph, reader, weight));
      const x = l2(tensor);
      return rows.map((r, c) => r * x[c]);
    };
    if (target === 'neurons') scores.push(Array.from(await weighted(b.mlp.down!, wanted[i].down), Math.sqrt));
    else if (target === 'heads') {
      const a = b.attention;
      scores.push(groups(await weighted(a.o!, wanted[i].o), (a.heads! / a.kvHeads!) * a.headSize!).map(Math.sqrt));
    } else {
      const all = [...await weighted(b.attention.o!, wanted[i].o), ...await weighted(b.mlp.down!, wanted[i].down)];
      scores.push([Math.sqrt(all.reduce((x, y) => x + y, 0))]);
    }
  }
  return scores;
}

/** 1 − cos(a_t, b_t) summed over the tokens t of row-major [tokens, d] activations. */
export function angularSum(a: Float32Array, b: Float32Array, d: number): { sum: number; tokens: number } {
  const tokens = Math.floor(a.length / d);
  let sum = 0;
  for (let t = 0; t < tokens; t++) {
    let ab = 0, aa = 0, bb = 0;
    for (let i = t * d; i < (t + 1) * d; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
    const den = Math.sqrt(aa * bb);
    sum += 1 - (den > 0 ? ab / den : 1);
  }
  return { sum, tokens };
}

const asFloat32 = (t: ort.Tensor): Float32Array => (t.type === 'float16' ? halfToFloat32(t.data as unknown as ArrayLike<number>) : Float32Array.from(t.data as Float32Array));

/** Block influence (ShortGPT; see the header) of every block on the calibration text: scores[b] = [BI_b]. */
export async function blockInfluenceScores(map: ArchitectureMap, src: CalibrationSource, ctx: JobContext): Promise<number[][]> {
  const model = await readModel(src.modelPath);
  const prepared = await validateCalibration({ model, tokenizerPath: src.tokenizerPath, calibration: src.calibration, what: 'Block influence' });
  const graph = model.proto.graph!;
  const joins = map.blocks.map((b) => graph.node.find((n) => (n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`) === b.residual.mlpJoin));
  if (joins.some((j) => !j) || map.blocks.some((b) => !b.residual.input)) throw new WhittleError('UNSUPPORTED_MODEL', 'Block influence needs the residual stream around every block, which the architecture map did not find.');
  // Block b: stream in = residual.input; stream out = the two summands of its closing join.
  const captures = map.blocks.flatMap((b, i) => [b.residual.input!, joins[i]!.input[0], joins[i]!.input[1]]);
  const outputs = addCaptureOutputs(model.proto, captures.map((tensor) => ({ tensor })));
  const samples = sampleCalibration(prepared.text, prepared.tokenizer, prepared.options);
  const L = prepared.calibration.length;
  const files = await writeCaptureModel(model, ctx.workDir, ctx.signal);
  const sums = map.blocks.map(() => ({ sum: 0, tokens: 0 }));
  let session: ort.InferenceSession | null = null;
  try {
    session = await createSession(files.modelPath);
    const layout = detectDecoderLayoutFromSession(session, src.modelPath);
    const fetches = [...new Set(captures.map((c) => outputs.get(c)!))];
    for (const [n, row] of samples.entries()) {
      throwIfAborted(ctx.signal);
      const result = await session.run(decoderFeeds(layout, row.slice(0, L), 1, L, 0), fetches);
      const get = (v: string): Float32Array => asFloat32(result[outputs.get(v)!] as ort.Tensor);
      map.blocks.forEach((b, i) => {
        const x = get(b.residual.input!);
        const y0 = get(joins[i]!.input[0]);
        const y1 = get(joins[i]!.input[1]);
        const y = y0.map((v, k) => v + y1[k]);
        const d = (result[outputs.get(b.residual.input!)!] as ort.Tensor).dims.at(-1) ?? 1;
        const r = angularSum(x, y, d);
        sums[i].sum += r.sum;
        sums[i].tokens += r.tokens;
      });
      ctx.progress({ phase: 'calibrate', done: n + 1, total: samples.length, message: 'block influence' });
    }
  } finally {
    await session?.release().catch(() => undefined);
    await files.remove().catch(() => undefined);
  }
  return sums.map((s) => [s.tokens ? s.sum / s.tokens : 0]);
}
