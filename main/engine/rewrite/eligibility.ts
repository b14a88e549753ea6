/**
 * Which weights a weight-only quantization rewrites, and why the others stay as they are.
 *
 * A target is a float (fp32/fp16) 2-D initializer W feeding exactly one node, as
 *   MatMul(A, W)                      W: [K, N]
 *   Gemm(A, W[, C]) with transA = 0   W: [K, N] (transB = 0) or [N, K] (transB = 1)
 * Everything else that looks like a weight is listed with the reason it is skipped, so the user sees
 * what stayed in float: shared or tied weights, embeddings, non-float or already quantized weights,
 * weights behind a Transpose, batched (3-D+) weights, names matching a `keep` pattern, K below one block.
 */
import { dtypeName } from '../onnx/dtype.ts';
import { attrFloat, attrInt, consumerMap, initializerMap, producerMap, subgraphsOf, toNumber } from '../onnx/graph.ts';
import type { GraphProto, Int64, NodeProto, TensorProto } from '../onnx/proto-types.ts';

export interface QuantTarget {
  /** Initializer name. */
  weight: string;
  node: NodeProto;
  op: 'MatMul' | 'Gemm';
  /** Shape as stored ([K, N], or [N, K] for Gemm transB = 1). */
  shape: number[];
  dtype: 'float32' | 'float16';
  k: number;
  n: number;
  /** Gemm transB = 1: the stored weight is [N, K] and is transposed before quantizing. */
  transposed: boolean;
  /** Gemm alpha, folded into the scales (1 for MatMul). */
  alpha: number;
}

export interface SkippedWeight {
  name: string;
  op: string;
  shape: number[];
  dtype: string;
  reason: string;
}

export interface TargetPlan {
  targets: QuantTarget[];
  skipped: SkippedWeight[];
  /** Nodes that already carry quantized weights (MatMulNBits, GatherBlockQuantized, DQ → MatMul). */
  alreadyQuantized: number;
}

export interface TargetOptions {
  blockSize: number;
  /** Regular expressions on initializer names; a match keeps the weight in float. */
  keep: RegExp[];
}

export const EMBEDDING_REASON = 'embeddings stay in float (GatherBlockQuantized comes later)';

const ONNX_DOMAINS = new Set(['', 'ai.onnx']);
const QUANTIZED_OPS = new Set(['MatMulNBits', 'GatherBlockQuantized', 'MatMulInteger', 'QLinearMatMul', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat']);

const num = (v: Int64 | undefined): number => toNumber(v);

const isOnnxOp = (node: NodeProto, op: string): boolean => node.opType === op && ONNX_DOMAINS.has(node.domain ?? '');

function countSubgraphMatMuls(graph: GraphProto): number {
  let count = 0;
  for (const node of graph.node) {
    for (const g of subgraphsOf(node)) {
      count += g.node.filter((n) => isOnnxOp(n, 'MatMul') || isOnnxOp(n, 'Gemm')).length + countSubgraphMatMuls(g);
    }
  }
  return count;
}

/** Chooses the MatMul/Gemm weights to quantize in the main graph and records why others are skipped. */
export function planTargets(graph: GraphProto, options: TargetOptions): TargetPlan {
  const inits = initializerMap(graph);
  const graphInputs = new Set(graph.input.map((v) => v.name));
  const graphOutputs = new Set(graph.output.map((v) => v.name));
  // A value read inside an If/Loop/Scan body counts as read by the node holding the body.
  const consumers = consumerMap(graph);
  const producer = producerMap(graph);

  const targets: QuantTarget[] = [];
  const skipped: SkippedWeight[] = [];
  const decided = new Set<string>();
  let alreadyQuantized = 0;

  const describe = (t: TensorProto) => ({ shape: t.dims.map(num), dtype: dtypeName(t.dataType) });
  const skip = (name: string, op: string, reason: string): void => {
    if (decided.has(name)) return;
    decided.add(name);
    const t = inits.get(name);
    skipped.push({ name, op, ...(t ? describe(t) : { shape: [], dtype: 'unknown' }), reason });
  };

  /** The reason W (feeding `node` as input `index`) cannot be rewritten, or null when it can. */
  const blocker = (name: string, t: TensorProto): string | null => {
    if (options.keep.some((re) => re.test(name))) {
      return `kept in full precision: the name matches a keep pattern (${options.keep.find((re) => re.test(name))})`;
    }
    const dtype = dtypeName(t.dataType);
    if (dtype !== 'float32' && dtype !== 'float16') {
      return dtype === 'bfloat16' ? 'bfloat16 weights are not supported yet' : `weight type ${dtype} is not float (already quantized or integer)`;
    }
    if (t.dims.length !== 2) return `${t.dims.length}-D weight (batched MatMul); only 2-D weights are quantized`;
    const users = consumers.get(name) ?? [];
    if (users.length > 1) return `shared by ${users.length} nodes (${users.map((n) => n.opType ?? '?').join(', ')}); shared weights are kept`;
    if (graphInputs.has(name)) return 'also a graph input (may be overridden at run time)';
    if (graphOutputs.has(name)) return 'also a graph output';
    return null;
  };

  for (const node of graph.node) {
    if (QUANTIZED_OPS.has(node.opType ?? '')) { alreadyQuantized++; continue; }

    if (isOnnxOp(node, 'MatMul') || isOnnxOp(node, 'Gemm')) {
      const op = node.opType as 'MatMul' | 'Gemm';
      const b = node.input[1];
      const t = b ? inits.get(b) : undefined;
      if (!t) {
        const p = b ? producer.get(b) : undefined;
        if (p && isOnnxOp(p, 'Transpose') && inits.has(p.input[0])) {
          const w = p.input[0];
          const shared = (consumers.get(w)?.length ?? 0) > 1 ? `; also used by ${consumers.get(w)!.filter((c) => c !== p).map((c) => c.opType).join(', ')}` : '';
          skip(w, op, `weight behind a Transpose (tied embeddings)${shared}`);
        } else if (p && isOnnxOp(p, 'DequantizeLinear')) {
          alreadyQuantized++;
        } else if (p && isOnnxOp(p, 'Constant')) {
          skip(b, op, 'weight is the output of a Constant node, not an initializer');
        }
        continue;
      }
      if (decided.has(b)) continue;
      const shape = t.dims.map(num);
      const reason = blocker(b, t);
      if (reason) { skip(b, op, reason); continue; }

      let transposed = false;
      let alpha = 1;
      if (op === 'Gemm') {
        if (attrInt(node, 'transA', 0) !== 0) { skip(b, op, 'Gemm with transA = 1 is not rewritten'); continue; }
        transposed = attrInt(node, 'transB', 0) !== 0;
        alpha = attrFloat(node, 'alpha', 1);
      }
      const [k, n] = transposed ? [shape[1], shape[0]] : [shape[0], shape[1]];
      if (k < options.blockSize) { skip(b, op, `K = ${k} is smaller than one block (${options.blockSize})`); continue; }
      if (k === 0 || n === 0) { skip(b, op, 'empty weight'); continue; }
      decided.add(b);
      targets.push({ weight: b, node, op, shape, dtype: dtypeName(t.dataType) as 'float32' | 'float16', k, n, transposed, alpha });
      continue;
    }

    if (isOnnxOp(node, 'Gather') && inits.has(node.input[0])) {
      const w = node.input[0];
      const uses = consumers.get(w)?.length ?? 0;
      const base = /(^|[._])(rope|rotary|cos|sin|cos_cache|sin_cache|position)/i.test(w) ? 'rotary/position lookup table (Gather) stays in float' : EMBEDDING_REASON;
      skip(w, 'Gather', uses > 1 ? `${base}; shared by ${uses} nodes (${consumers.get(w)!.map((c) => c.opType).join(', ')})` : base);
      continue;
    }

    if (node.opType === 'Attention' && node.domain === 'com.microsoft' && inits.has(node.input[1])) {
      skip(node.input[1], 'Attention', 'fused com.microsoft.Attention QKV weight (not a MatMul input)');
    }
  }

  const inner = countSubgraphMatMuls(graph);
  if (inner > 0) skipped.push({ name: '(subgraphs)', op: 'MatMul', shape: [], dtype: '', reason: `${inner} MatMul/Gemm node(s) inside If/Loop/Scan bodies are not rewritten` });

  return { targets, skipped, alreadyQuantized };
}
