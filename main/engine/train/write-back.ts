/**
 * Writes a trained model: the source graph unchanged (its own layout: cache inputs, opset, dtypes), with
 * the trained weights' bytes replaced — float32 master weights narrowed back to float16 / bfloat16 where
 * the source stored them so — through the one output-folder lifecycle of every step.
 */
import { WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import { f32ToF16 } from '../native/fp16.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';
import type { TrainableParameter } from './parameters.ts';

/** float32 → bfloat16 bits, round to nearest even. */
function toBfloat16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** A float32 master weight as bytes of the source's own type (float32, float16 or bfloat16). */
export async function sourceBytes(p: TrainableParameter, w: Float32Array): Promise<Uint8Array> {
  if (p.sourceDtype === DataType.float32) return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  if (p.sourceDtype === DataType.float16) { const h = await f32ToF16(w); return new Uint8Array(h.buffer, h.byteOffset, h.byteLength); }
  if (p.sourceDtype === DataType.bfloat16) { const h = toBfloat16(w); return new Uint8Array(h.buffer, h.byteOffset, h.byteLength); }
  throw new WhittleError('INTERNAL', `Cannot write ${p.name} back as data type ${p.sourceDtype}.`);
}

export async function writeTrainedModel(
  source: OnnxModel,
  params: TrainableParameter[],
  weights: Float32Array[],
  outDir: string,
  ctx: JobContext,
  step: unknown,
  options: OutputOptions,
): Promise<WrittenFolder> {
  const byName = new Map(params.map((p, i) => [p.name, i]));
  return writeOutputFolder(source, outDir, ctx, {
    step,
    options,
    async rewrite(model, scope) {
      const graph = model.proto.graph;
      if (!graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
      let replaced = 0;
      for (const t of graph.initializer) {
        const i = byName.get(t.name ?? '');
        if (i === undefined) continue;
        throwIfAborted(ctx.signal);
        t.data = await scope.spool.append(await sourceBytes(params[i], weights[i]));
        t.externalData = [];
        delete t.dataLocation;
        replaced++;
      }
      if (replaced !== params.length) throw new WhittleError('INTERNAL', `Only ${replaced} of ${params.length} trained weights were found in the source graph.`);
      return params.map((p): ManifestWeight => ({ name: p.name, shape: p.dims, bits: null, blockSize: null, status: 'trained' }));
    },
    manifest: (weightsOut) => ({ weights: weightsOut }),
  });
}
