/**
 * LoRA on a MatMulNBits model (QLoRA-style): the adapters train over the frozen dequantized weights
 * (quantized-student.ts, lora.ts), and at export each adapted weight
 *   W' = W_deq + (α/r)·A·B                                                     [K, N]
 * is quantized again with the source's bits, block size and symmetry, by
 *   'rtn'   round-to-nearest on W' alone (new scales and zero points from W''s blocks), or
 *   'gptq'  GPTQ on the merged float model (quantize/gptq.ts), calibrated on the given text;
 * its codes, scales and zero points replace the source's. Every weight without an adapter keeps its
 * codes, scales and zero points byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { QuantizeGptqStep, type CalibrationConfig } from '../../../preload/recipe.ts';
import { WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { f32ToF16, quantizeBlockwise } from '../native/index.ts';
import { DataType } from '../onnx/dtype.ts';
import { attrInt } from '../onnx/graph.ts';
import type { GraphProto, OnnxModel } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { readTensorBytes } from '../onnx/tensor-data.ts';
import { quantizeGptq } from '../quantize/gptq.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';
import { writeLoraModel, type LoraView } from './lora.ts';
import type { WeightGrid } from './quantized-student.ts';

/** How merged adapters are quantized again. */
export type Requantize = { method: 'rtn' } | { method: 'gptq'; calibration: CalibrationConfig; tokenizerPath: string };

/** New bytes of one adapted weight's codes, scales and zero points (each the size of the source's). */
interface RequantizedWeight {
  grid: WeightGrid;
  packed: Uint8Array;
  scales: Uint8Array;
  zeroPoints: Uint8Array | null;
}

const bytesOf = (a: Float32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function rtnOf(grid: WeightGrid, merged: Float32Array): Promise<RequantizedWeight> {
  const half = grid.dtype === DataType.float16;
  const q = await quantizeBlockwise(merged, { k: grid.k, n: grid.n, bits: grid.bits, blockSize: grid.blockSize, symmetric: grid.symmetric, scalesFp16: half });
  return { grid, packed: q.packed, scales: half ? bytesOf(await f32ToF16(q.scales)) : bytesOf(q.scales), zeroPoints: q.zeroPoints };
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** GPTQ of the adapted weights of the merged float model; their MatMulNBits tensors read back from its output. */
async function gptqOf(
  floatSource: OnnxModel, lora: LoraView, trained: ReadonlyMap<string, Float32Array>, grids: WeightGrid[],
  settings: Extract<Requantize, { method: 'gptq' }>, scratch: string, ctx: JobContext,
): Promise<RequantizedWeight[]> {
  const blockSizes = new Set(grids.map((g) => g.blockSize));
  const symmetries = new Set(grids.map((g) => g.symmetric));
  if (blockSizes.size > 1 || symmetries.size > 1) {
    throw new WhittleError('INVALID_INPUT', 'The adapted weights were quantized with different block sizes or symmetry; GPTQ quantizes them in one pass with one grid. Re-quantize with RTN, or adapt fewer roles.', { blockSizes: [...blockSizes] });
  }
  const merged = await writeLoraModel(floatSource, lora, trained, path.join(scratch, 'merged'), ctx, { type: 'train' }, { deliver: 'final', tokenizerPath: settings.tokenizerPath });
  const adapted = new Set(grids.map((g) => g.weight));
  const keep = ((await readModel(merged.modelPath)).proto.graph?.initializer ?? []).map((t) => t.name ?? '').filter((n) => n !== '' && !adapted.has(n)).map((n) => `^${escapeRegExp(n)}$`);
  const q = await quantizeGptq(merged.modelPath, QuantizeGptqStep.parse({
    type: 'quantize', method: 'gptq', bits: grids[0].bits, blockSize: grids[0].blockSize, symmetric: grids[0].symmetric, accuracyLevel: 0,
    calibration: settings.calibration, keep, overrides: grids.map((g) => ({ pattern: `^${escapeRegExp(g.weight)}$`, bits: g.bits })),
  }), path.join(scratch, 'gptq'), ctx, { tokenizerPath: settings.tokenizerPath, deliver: 'final' });
  const graph = (await readModel(q.modelPath)).proto.graph as GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
  const out: RequantizedWeight[] = [];
  for (const grid of grids) {
    // The GPTQ writer names the tensors of W `${W}_Q{bits}`, `${W}_scales`, `${W}_zp` (quantize/rewrite.ts).
    const node = graph.node.find((n) => n.opType === 'MatMulNBits' && n.input[1] === `${grid.weight}_Q${grid.bits}`);
    const b = node && inits.get(node.input[1]), s = node && inits.get(node.input[2]);
    const z = node && (node.input[3] ?? '') !== '' ? inits.get(node.input[3]) : undefined;
    if (!node || !b || !s || attrInt(node, 'bits', 0) !== grid.bits || (z === undefined) !== grid.symmetric) {
      throw new WhittleError('INTERNAL', `GPTQ did not quantize ${grid.weight} as its source was (${grid.bits} bits, block ${grid.blockSize}).`, { weight: grid.weight });
    }
    out.push({ grid, packed: await readTensorBytes(b), scales: await readTensorBytes(s), zeroPoints: z ? await readTensorBytes(z) : null });
  }
  return out;
}

/**
 * Writes the quantized source `quantizedPath` with each adapted weight's merged value quantized again
 * (see the header); `floatSource` is the dequantized model the adapters trained on, `trained` the
 * adapters by name.
 */
export async function writeRequantizedLora(
  quantizedPath: string,
  floatSource: OnnxModel,
  grids: ReadonlyMap<string, WeightGrid>,
  lora: LoraView,
  trained: ReadonlyMap<string, Float32Array>,
  requantize: Requantize,
  outDir: string,
  ctx: JobContext,
  step: unknown,
  options: OutputOptions,
): Promise<WrittenFolder> {
  const adapted = lora.adapters.map((a) => {
    const g = grids.get(a.weight);
    if (!g) throw new WhittleError('INTERNAL', `The adapted weight ${a.weight} has no quantization grid.`);
    return g;
  });
  let weights: RequantizedWeight[];
  const scratch = path.join(path.dirname(path.resolve(outDir)), `.${path.basename(outDir)}.requantize-${randomBytes(4).toString('hex')}`);
  try {
    if (requantize.method === 'gptq') {
      weights = await gptqOf(floatSource, lora, trained, adapted, requantize, scratch, ctx);
    } else {
      const merged = lora.merge(trained);
      weights = [];
      for (const g of adapted) {
        throwIfAborted(ctx.signal);
        weights.push(await rtnOf(g, merged.get(g.weight) as Float32Array));
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const model = await readModel(quantizedPath);
  return writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    async rewrite(m, scope) {
      const inits = new Map((m.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
      const put = async (name: string | null, bytes: Uint8Array | null): Promise<void> => {
        if (name === null || bytes === null) return;
        const t = inits.get(name);
        if (!t) throw new WhittleError('INTERNAL', `The quantized model has no initializer ${name}.`);
        t.data = await scope.spool.append(bytes.slice());
        t.externalData = [];
        delete t.dataLocation;
      };
      for (const w of weights) {
        await put(w.grid.packed, w.packed);
        await put(w.grid.scalesName, w.scales);
        await put(w.grid.zeroPointsName, w.zeroPoints);
      }
      return weights;
    },
    manifest: (list) => ({
      weights: list.map((w): ManifestWeight => ({ name: w.grid.packed, shape: [w.grid.k, w.grid.n], bits: w.grid.bits, blockSize: w.grid.blockSize, status: 'quantized', reason: `LoRA merged, re-quantized with ${requantize.method.toUpperCase()}` })),
      extra: { requantize: { method: requantize.method, adapted: list.map((w) => w.grid.weight) } },
    }),
  });
}
