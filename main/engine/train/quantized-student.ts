/**
 * A student whose linear weights are com.microsoft.MatMulNBits (Whittle's RTN or GPTQ result) as a float
 * model for training, and the way back onto its own grid.
 *
 * MatMulNBits (onnxruntime docs/ContribOperators.md#com.microsoft.MatMulNBits), for A [.., K]:
 *   B            uint8 [N, kb, bs·bits/8]   codes of column n packed along K, first in the low bits; kb = ⌈K/bs⌉
 *   scales       [N, kb]                    in A's type
 *   zero_points  uint8 [N, ⌈kb·bits/8⌉]     packed the same way; absent: 2^(bits−1)
 *   Y = A · W,   W[k, n] = s[n, k/bs] · (q[n, k] − zp[n, k/bs])                          [K, N]
 *
 * writeDequantizedModel turns each such node into MatMul(A, W) (+ Add of its bias), W computed exactly as
 * above and stored in A's type, one weight at a time (read, dequantize, spool, drop), and returns each
 * weight's grid: bits, block size, the scales and zero points it came with. A training view of that model
 * (view.ts) is then what the quantized model computes; applyFakeQuant's fixed grid (qat.ts) keeps it on
 * that grid, and writeOnGrid puts the trained weights back as codes on the same scales and zero points:
 *   q[n, k] = clamp(round_half_even(w[k, n] / s) + zp, 0, 2^bits − 1)     (s = 0: a block of zeros, s = 1)
 * which is QuantizeLinear's rule, the one the training forward used.
 */
import { WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { dequantizeBlockwise, f16ToF32, f32ToF16 } from '../native/index.ts';
import type { QuantBits } from '../native/index.ts';
import { DataType } from '../onnx/dtype.ts';
import { allGraphs, attrInt, makeNode, sweepUnusedInitializers } from '../onnx/graph.ts';
import type { GraphProto, NodeProto, OnnxModel, TensorProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import type { WeightReader } from '../rewrite/weight-reader.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';
import type { TrainableParameter } from './parameters.ts';
import { sourceBytes } from './write-back.ts';

/** One MatMulNBits weight's grid, and where it lives in the quantized model. */
export interface WeightGrid {
  /** The float weight W [K, N] of the dequantized model (the training view's parameter). */
  weight: string;
  /** The quantized model's initializers: packed codes B, scales, zero points (null: symmetric). */
  packed: string;
  scalesName: string;
  zeroPointsName: string | null;
  k: number;
  n: number;
  bits: QuantBits;
  blockSize: number;
  kBlocks: number;
  /** [N, kBlocks] as MatMulNBits stores them (float16 scales widened exactly). */
  scales: Float32Array;
  /** [N, kBlocks] unpacked; 2^(bits−1) everywhere when symmetric. */
  zeroPoints: Uint8Array;
  symmetric: boolean;
  /** The scales' (and activations') type in the quantized model: float32 or float16. */
  dtype: number;
}

export interface DequantizedModel {
  folder: WrittenFolder;
  /** By float weight name. */
  grids: Map<string, WeightGrid>;
}

/** Ops with integer weights that this path does not turn into float weights. */
const OTHER_INTEGER_OPS = new Set(['MatMulInteger', 'QLinearMatMul', 'DynamicQuantizeLinear', 'GatherBlockQuantized', 'QLinearConv', 'ConvInteger', 'DequantizeLinear', 'QuantizeLinear']);

const isMatMulNBits = (n: NodeProto): boolean => n.opType === 'MatMulNBits' && n.domain === 'com.microsoft';

/** Whether `model` has MatMulNBits weights (the student takes this path). */
export function hasMatMulNBits(model: OnnxModel): boolean {
  for (const { graph } of allGraphs(model.proto)) if (graph.node.some(isMatMulNBits)) return true;
  return false;
}

/**
 * Why the quantized weights of `model` cannot be trained on their grid, or null when they can: integer
 * weights other than MatMulNBits (INT8 QDQ, MatMulInteger, …), MatMulNBits inside subgraphs, with
 * g_idx, float zero points or bits other than 2, 4, 8, or codes that are not constant initializers.
 */
export function gridTrainingIssue(model: OnnxModel): string | null {
  const main = model.proto.graph;
  if (!main) return 'the model has no graph';
  for (const { graph } of allGraphs(model.proto)) {
    for (const n of graph.node) {
      if (OTHER_INTEGER_OPS.has(n.opType ?? '')) {
        return `it holds integer weights as ${n.opType ?? ''} (${n.name ?? ''}), which only MatMulNBits results (RTN, GPTQ) can be trained through; recover from the float model with KD-QAT (quantize --method qat) instead`;
      }
      if (isMatMulNBits(n) && graph !== main) return `its MatMulNBits node ${n.name ?? ''} sits inside a subgraph`;
    }
  }
  const inits = new Map(main.initializer.map((t) => [t.name ?? '', t]));
  for (const n of main.node.filter(isMatMulNBits)) {
    const bits = attrInt(n, 'bits', 4);
    if (bits !== 2 && bits !== 4 && bits !== 8) return `${n.name ?? ''} has ${bits}-bit codes; Whittle trains 2-, 4- and 8-bit MatMulNBits`;
    if ((n.input[4] ?? '') !== '') return `${n.name ?? ''} has a g_idx input (act-order groups), which Whittle does not train`;
    const b = inits.get(n.input[1] ?? ''), s = inits.get(n.input[2] ?? '');
    if (!b || !s) return `the codes or scales of ${n.name ?? ''} are not constant initializers`;
    const zp = n.input[3] ?? '';
    if (zp !== '') {
      const z = inits.get(zp);
      if (!z) return `the zero points of ${n.name ?? ''} are not a constant initializer`;
      if (z.dataType !== DataType.uint8) return `${n.name ?? ''} has float zero points; Whittle trains packed uint8 zero points (its own RTN and GPTQ results)`;
    }
    const bias = n.input[5] ?? '';
    if (bias !== '' && !inits.has(bias) && !main.node.some((p) => p.output.includes(bias))) return `the bias of ${n.name ?? ''} has no producer`;
  }
  return null;
}

/** Field i of a buffer of `bits`-wide fields, first in the low bits. */
function field(buf: Uint8Array, i: number, bits: number): number {
  const perByte = 8 / bits;
  return (buf[Math.floor(i / perByte)] >> ((i % perByte) * bits)) & ((1 << bits) - 1);
}

/** Sets field i (the other fields of its byte are kept). */
function setField(buf: Uint8Array, i: number, bits: number, value: number): void {
  const perByte = 8 / bits;
  const shift = (i % perByte) * bits;
  const mask = ((1 << bits) - 1) << shift;
  const at = Math.floor(i / perByte);
  buf[at] = (buf[at] & ~mask) | ((value << shift) & mask);
}

async function floatsOf(bytes: Uint8Array, dtype: number, count: number): Promise<Float32Array> {
  if (dtype === DataType.float32) return new Float32Array(bytes.slice(0, count * 4).buffer);
  if (dtype === DataType.float16) return f16ToF32(new Uint16Array(bytes.slice(0, count * 2).buffer));
  throw new WhittleError('UNSUPPORTED_MODEL', `MatMulNBits scales of data type ${dtype} are not supported; Whittle reads float32 and float16 scales.`, { dtype });
}

/** The float weight's name: the codes' name without Whittle's `_Q{bits}` suffix when that is free. */
function floatName(packed: string, bits: number, taken: (name: string) => boolean): string {
  const suffix = `_Q${bits}`;
  const stripped = packed.endsWith(suffix) ? packed.slice(0, -suffix.length) : '';
  if (stripped !== '' && !taken(stripped)) return stripped;
  let name = `${packed}_dequantized`;
  for (let i = 1; taken(name); i++) name = `${packed}_dequantized_${i}`;
  return name;
}

/** Reads one node's grid and its dequantized weight W [K, N] (float32). */
async function readGrid(node: NodeProto, inits: Map<string, TensorProto>, reader: WeightReader, weight: string): Promise<{ grid: WeightGrid; w: Float32Array }> {
  const k = attrInt(node, 'K', 0), n = attrInt(node, 'N', 0), bits = attrInt(node, 'bits', 4) as QuantBits, blockSize = attrInt(node, 'block_size', 0);
  const kBlocks = Math.ceil(k / blockSize);
  const b = inits.get(node.input[1]) as TensorProto, s = inits.get(node.input[2]) as TensorProto;
  const zpName = (node.input[3] ?? '') !== '' ? node.input[3] : null;
  const packed = (await reader.read(b)).slice();
  const dtype = s.dataType ?? DataType.float32;
  const scales = await floatsOf(await reader.read(s), dtype, n * kBlocks);
  const packedZp = zpName ? (await reader.read(inits.get(zpName) as TensorProto)).slice() : null;
  const w = await dequantizeBlockwise({ packed, scales, zeroPoints: packedZp, k, n, bits, blockSize, kBlocks, sqError: 0 });
  const zeroPoints = new Uint8Array(n * kBlocks).fill(1 << (bits - 1));
  if (packedZp) {
    const row = Math.ceil((kBlocks * bits) / 8);
    for (let c = 0; c < n; c++) for (let j = 0; j < kBlocks; j++) zeroPoints[c * kBlocks + j] = field(packedZp.subarray(c * row, (c + 1) * row), j, bits);
  }
  return {
    grid: { weight, packed: b.name ?? '', scalesName: s.name ?? '', zeroPointsName: zpName, k, n, bits, blockSize, kBlocks, scales, zeroPoints, symmetric: zpName === null, dtype },
    w,
  };
}

/**
 * Writes `quantizedPath` with every MatMulNBits node replaced by MatMul on its dequantized weight (in the
 * scales' type) to `outDir`, and returns the grids. Refuses (UNSUPPORTED_MODEL) what gridTrainingIssue
 * names. A codes tensor read by several nodes becomes one float weight read by several MatMuls.
 */
export async function writeDequantizedModel(quantizedPath: string, outDir: string, ctx: JobContext, options: OutputOptions = {}): Promise<DequantizedModel> {
  const model = await readModel(quantizedPath);
  const issue = gridTrainingIssue(model);
  if (issue) throw new WhittleError('UNSUPPORTED_MODEL', `The quantized weights of ${quantizedPath} cannot be trained on their grid: ${issue}.`, { path: quantizedPath });
  const grids = new Map<string, WeightGrid>();
  const folder = await writeOutputFolder(model, outDir, ctx, {
    step: { type: 'dequantize', from: 'MatMulNBits' },
    options,
    async rewrite(m, scope) {
      const graph = m.proto.graph as GraphProto;
      const inits = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
      const names = new Set<string>([...inits.keys(), ...graph.node.flatMap((x) => x.output), ...graph.input.map((v) => v.name ?? '')]);
      const byPacked = new Map<string, string>();
      const nodes: NodeProto[] = [];
      for (const node of graph.node) {
        if (!isMatMulNBits(node)) { nodes.push(node); continue; }
        throwIfAborted(ctx.signal);
        let weight = byPacked.get(node.input[1]);
        if (weight === undefined) {
          const bits = attrInt(node, 'bits', 4);
          weight = floatName(node.input[1], bits, (x) => names.has(x));
          names.add(weight);
          byPacked.set(node.input[1], weight);
          const { grid, w } = await readGrid(node, inits, scope.reader, weight);
          grids.set(weight, grid);
          // W [K, N] in A's type (the scales' type).
          const half = grid.dtype === DataType.float16;
          const bytes = half ? new Uint8Array((await f32ToF16(w)).buffer) : new Uint8Array(w.buffer);
          graph.initializer.push({ name: weight, dataType: half ? DataType.float16 : DataType.float32, dims: [grid.k, grid.n], data: await scope.spool.append(bytes), stringData: [], externalData: [], metadataProps: [] });
        }
        const bias = node.input[5] ?? '';
        const y = node.output[0];
        const mmOut = bias === '' ? y : `${y}/matmul`;
        nodes.push(makeNode({ opType: 'MatMul', inputs: [node.input[0], weight], outputs: [mmOut], name: `${node.name ?? weight}/dequantized` }));
        if (bias !== '') nodes.push(makeNode({ opType: 'Add', inputs: [mmOut, bias], outputs: [y], name: `${node.name ?? weight}/bias` }));
      }
      graph.node = nodes;
      sweepUnusedInitializers(graph);
      return [...grids.values()];
    },
    manifest: (list) => ({ weights: list.map((g): ManifestWeight => ({ name: g.weight, shape: [g.k, g.n], bits: g.bits, blockSize: g.blockSize, status: 'quantized' })) }),
  });
  return { folder, grids };
}

/** The codes of trained W [K, N] on `grid`, packed as MatMulNBits B over a copy of `original` (padding codes kept). Returns how many codes changed. */
export function requantizeOnGrid(grid: WeightGrid, w: Float32Array, original: Uint8Array): { packed: Uint8Array; changed: number } {
  const { k, n, bits, blockSize, kBlocks } = grid;
  if (w.length !== k * n) throw new WhittleError('INTERNAL', `${grid.weight} has ${w.length} trained values; its grid is [${k}, ${n}].`);
  const packed = original.slice();
  const qmax = (1 << bits) - 1;
  const row = kBlocks * blockSize; // fields per column
  let changed = 0;
  for (let c = 0; c < n; c++) {
    for (let r = 0; r < k; r++) {
      const g = c * kBlocks + Math.floor(r / blockSize);
      const s = grid.scales[g];
      const x = Math.fround(w[r * n + c] / (s === 0 ? 1 : s));
      let q = Math.round(x);
      if (Math.abs(x - Math.trunc(x)) === 0.5) q = 2 * Math.round(x / 2); // ties to even, as QuantizeLinear
      q = Math.min(qmax, Math.max(0, q + grid.zeroPoints[g]));
      const i = c * row + r;
      if (field(packed, i, bits) !== q) { setField(packed, i, bits, q); changed++; }
    }
  }
  return { packed, changed };
}

/** What writeOnGrid did to each weight. */
export interface GridWeightReport {
  name: string;
  /** Codes that differ from the quantized model's. */
  changed: number;
  total: number;
}

/**
 * Writes the quantized model `quantizedPath` with the trained weights: each grid weight's codes re-rounded
 * on its own scales and zero points (requantizeOnGrid; the scales and zero points are copied unchanged),
 * every other trained parameter (norms, embeddings, a float LM head) written back by name in its own type.
 */
export async function writeOnGrid(
  quantizedPath: string,
  grids: ReadonlyMap<string, WeightGrid>,
  params: readonly TrainableParameter[],
  weights: readonly Float32Array[],
  outDir: string,
  ctx: JobContext,
  step: unknown,
  options: OutputOptions,
): Promise<WrittenFolder & { result: GridWeightReport[] }> {
  const model = await readModel(quantizedPath);
  return writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    async rewrite(m, scope) {
      const graph = m.proto.graph as GraphProto;
      const inits = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
      const reports: GridWeightReport[] = [];
      for (const [i, p] of params.entries()) {
        throwIfAborted(ctx.signal);
        const grid = grids.get(p.name);
        const t = inits.get(grid ? grid.packed : p.name);
        if (!t) throw new WhittleError('INTERNAL', `The quantized model has no initializer for the trained weight ${p.name}.`);
        let bytes: Uint8Array;
        if (grid) {
          const r = requantizeOnGrid(grid, weights[i], (await scope.reader.read(t)).slice());
          bytes = r.packed;
          reports.push({ name: p.name, changed: r.changed, total: grid.k * grid.n });
        } else {
          bytes = (await sourceBytes(p, weights[i])).slice();
        }
        t.data = await scope.spool.append(bytes);
        t.externalData = [];
        delete t.dataLocation;
      }
      return reports;
    },
    manifest: (reports) => {
      const byName = new Map(reports.map((r) => [r.name, r]));
      return {
        weights: params.map((p): ManifestWeight => {
          const g = grids.get(p.name);
          return g
            ? { name: g.packed, shape: [g.k, g.n], bits: g.bits, blockSize: g.blockSize, status: 'quantized', reason: `trained on its grid: ${byName.get(p.name)?.changed ?? 0} of ${g.k * g.n} codes moved` }
            : { name: p.name, shape: p.dims, bits: null, blockSize: null, status: 'trained' };
        }),
      };
    },
  });
}
