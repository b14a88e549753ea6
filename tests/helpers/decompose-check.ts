/**
 * Runs a model before and after decomposeContribOps on the same feeds, with real onnxruntime sessions,
 * and reports the largest difference of each graph output relative to the tolerance
 * |a − b| ≤ atol + rtol·|b|.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelProto } from '../../main/engine/onnx/proto-types.ts';
import { halfToFloat } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { decomposeContribOps, type DecomposeResult } from '../../main/engine/train/decompose/index.ts';
import { probeTensors } from '../../main/engine/train/probe.ts';

let written = 0;

export async function runModel(model: ModelProto, feeds: Record<string, ort.Tensor>, dir: string): Promise<Record<string, ort.Tensor>> {
  const file = path.join(dir, `model-${written++}.onnx`);
  await writeModel(model, file, { externalData: 'auto' });
  const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v as ort.Tensor]));
  } finally {
    await session.release();
  }
}

export function asNumbers(t: ort.Tensor): Float64Array {
  const d = t.data as ArrayLike<number | bigint> & ArrayBufferView;
  if (t.type === 'float16') {
    const bits = new Uint16Array(d.buffer, d.byteOffset, t.size);
    return Float64Array.from(bits, (h) => halfToFloat(h));
  }
  return Float64Array.from(Array.from(d as ArrayLike<number | bigint>, Number));
}

export interface OutputDiff { name: string; dims: readonly number[]; worst: number; maxAbs: number }

/** Per output: the largest |a − b| / (atol + rtol·|b|) (≤ 1 passes) and the largest |a − b|. */
export function compareOutputs(got: Record<string, ort.Tensor>, want: Record<string, ort.Tensor>, rtol: number, atol: number): OutputDiff[] {
  return Object.keys(want).map((name) => {
    const a = asNumbers(got[name]);
    const b = asNumbers(want[name]);
    if (a.length !== b.length) return { name, dims: got[name].dims, worst: Number.POSITIVE_INFINITY, maxAbs: Number.POSITIVE_INFINITY };
    let worst = 0;
    let maxAbs = 0;
    for (let i = 0; i < a.length; i++) {
      const diff = Math.abs(a[i] - b[i]);
      const ratio = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff / (atol + rtol * Math.abs(b[i]));
      if (ratio > worst) worst = ratio;
      if (diff > maxAbs) maxAbs = diff;
    }
    return { name, dims: got[name].dims, worst, maxAbs };
  });
}

/** Probe, decompose (in place) and run `model` against its own contrib-op run. */
export async function decomposeAndCompare(model: ModelProto, feeds: Record<string, ort.Tensor>, dir: string, rtol: number, atol: number):
Promise<{ result: DecomposeResult; diffs: OutputDiff[]; left: string[] }> {
  const want = await runModel(model, feeds, dir);
  const probe = await probeTensors(model, feeds, { scratchDir: dir });
  const result = decomposeContribOps(model, probe.meta);
  const left = model.graph!.node.filter((n) => n.domain === 'com.microsoft' || n.opType === 'SimplifiedLayerNormalization').map((n) => n.opType ?? '');
  const got = await runModel(model, feeds, dir);
  return { result, diffs: compareOutputs(got, want, rtol, atol), left };
}
