/**
 * The per-weight loop every weight-rewriting technique shares (weight-only quantization, INT8 dynamic,
 * pruning next). For each planned target weight, one at a time — its bytes read by the WeightReader
 * while the previous weight is being transformed, so memory stays at about two weights — a transform
 * decides the weight's fate:
 *
 *   { kind: 'replace-nodes', nodes, tensors }  the node that reads it is replaced by `nodes` (node in →
 *                                              nodes out: MatMulNBits, DequantizeLinear → MatMul, …);
 *                                              `tensors` are new initializers (bytes spooled)
 *   { kind: 'replace-bytes', data }            the same node, new bytes of the same size for the weight
 *                                              (pruning, fake quantization)
 *   { kind: 'skip', reason }                   left as it is; the reason is returned and logged
 *
 * After the last weight the replacements are spliced into the graph in its order and initializers no
 * node reads any more are swept.
 */
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { initializerMap, sweepUnusedInitializers } from '../onnx/graph.ts';
import { byteSize } from '../onnx/dtype.ts';
import { elementCount } from '../onnx/tensor-data.ts';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto-types.ts';
import type { TensorSpool } from './spool.ts';
import type { WeightReader } from './weight-reader.ts';

/** A new initializer whose bytes the loop spools. */
export interface NewTensor {
  name: string;
  dataType: number;
  dims: number[];
  bytes: Uint8Array;
}

export type WeightEdit =
  /** The node is replaced by `nodes`; `tensors` are added (NewTensor bytes spooled, TensorProtos as they are). */
  | { kind: 'replace-nodes'; nodes: NodeProto[]; tensors: readonly (NewTensor | TensorProto)[] }
  /** The weight keeps its node, name, type and shape; its bytes become `data`. */
  | { kind: 'replace-bytes'; data: Uint8Array }
  | { kind: 'skip'; reason: string };

/** A planned weight: the initializer's name and the one node that reads it. */
export interface WeightTarget {
  weight: string;
  node: NodeProto;
}

export interface WeightLoop<T extends WeightTarget, W> {
  /** Progress phase name ('quantize', 'prune'). */
  phase: string;
  /** The weight's bytes (valid until the loop reads the weight after the next) → what `transform` takes. */
  decode(bytes: Uint8Array, target: T): W | Promise<W>;
  transform(target: T, weight: W, index: number): Promise<WeightEdit>;
}

export interface WeightLoopResult<T extends WeightTarget> {
  /** Targets whose node or bytes were replaced, in plan order. */
  changed: T[];
  skipped: { target: T; reason: string }[];
  /** Initializers removed by the sweep. */
  swept: string[];
}

function isNewTensor(t: NewTensor | TensorProto): t is NewTensor {
  return (t as NewTensor).bytes instanceof Uint8Array;
}

/** Runs the loop over `targets` of `graph` (see the file header). */
export async function transformWeights<T extends WeightTarget, W>(
  graph: GraphProto,
  targets: readonly T[],
  io: { reader: WeightReader; spool: TensorSpool },
  ctx: JobContext,
  loop: WeightLoop<T, W>,
): Promise<WeightLoopResult<T>> {
  const initializers = initializerMap(graph);
  const tensorOf = (t: T): TensorProto => {
    const tensor = initializers.get(t.weight);
    if (!tensor) throw new WhittleError('INTERNAL', `The planned weight '${t.weight}' is not an initializer of the graph.`);
    return tensor;
  };
  const replacements = new Map<NodeProto, NodeProto[]>();
  const changed: T[] = [];
  const skipped: { target: T; reason: string }[] = [];
  const total = targets.length;
  ctx.progress({ phase: loop.phase, done: 0, total });
  // Each weight is read (into the reader's other buffer) while the one before it is transformed.
  for await (const { index, item: target, value } of io.reader.stream(targets, tensorOf, loop.decode)) {
    throwIfAborted(ctx.signal);
    const edit = await loop.transform(target, value, index);
    switch (edit.kind) {
      case 'replace-nodes':
        for (const t of edit.tensors) {
          graph.initializer.push(isNewTensor(t)
            ? { name: t.name, dataType: t.dataType, dims: t.dims, data: await io.spool.append(t.bytes), stringData: [], externalData: [], metadataProps: [] }
            : t);
        }
        replacements.set(target.node, edit.nodes);
        changed.push(target);
        break;
      case 'replace-bytes': {
        const tensor = tensorOf(target);
        const need = byteSize(tensor.dataType, elementCount(tensor.dims));
        if (edit.data.length !== need) {
          throw new WhittleError('INTERNAL', `New bytes for '${target.weight}': ${edit.data.length} given, its shape [${tensor.dims.join(', ')}] needs ${need}.`);
        }
        tensor.data = await io.spool.append(edit.data);
        changed.push(target);
        break;
      }
      case 'skip':
        skipped.push({ target, reason: edit.reason });
        ctx.log('info', `skip ${target.weight}: ${edit.reason}`);
        break;
    }
    ctx.progress({ phase: loop.phase, done: index + 1, total, message: target.weight });
  }
  await io.reader.close();
  throwIfAborted(ctx.signal);

  if (replacements.size > 0) graph.node = graph.node.flatMap((n) => replacements.get(n) ?? [n]);
  const swept = sweepUnusedInitializers(graph);
  return { changed, skipped, swept };
}
