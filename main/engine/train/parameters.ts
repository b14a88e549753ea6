/**
 * Which initializers of a training view are parameters, what role each plays (from the architecture map,
 * never from names), which are frozen, and which take weight decay.
 *
 * A float initializer is a parameter when it feeds the batch's dataflow as a weight: an operand of
 * MatMul/Gemm, the table of a Gather whose indices come from the batch, the scale or bias of a
 * normalization, or a per-channel vector (non-1 only on its last axis) added to or multiplied with the
 * dataflow — possibly through layout-only ops (Transpose, Reshape, Cast, …). Tables read at constant
 * positions (rotary cos/sin), masks and scalars (epsilons, scales) are not parameters.
 */
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto-types.ts';
import { isFloatDtype } from '../onnx/dtype.ts';
import type { ArchitectureMap } from '../rewrite/architecture.ts';
import { consumerMap } from '../onnx/graph.ts';
import { WhittleError } from '../errors.ts';
import { decays } from './optimizer.ts';

export const FREEZE_ROLES = ['q', 'k', 'v', 'o', 'qkv', 'gate', 'up', 'down', 'norm', 'embedding', 'lm_head', 'bias'] as const;
export type ParameterRole = (typeof FREEZE_ROLES)[number] | 'other';

export interface TrainableParameter {
  name: string;
  dims: number[];
  role: ParameterRole;
  /** Block index from the architecture map, when the weight belongs to a block. */
  block: number | null;
  /** Source dtype (float16 weights are trained in float32 and written back as float16). */
  sourceDtype: number;
  /** AdamW weight decay applies (matrices; not biases, norms or embeddings). */
  decay: boolean;
}

const LAYOUT_OPS = new Set(['Transpose', 'Reshape', 'Cast', 'Squeeze', 'Unsqueeze', 'Identity', 'Flatten']);
const WEIGHT_OPS = new Set(['MatMul', 'Gemm']);
const NORM_OPS = new Set(['LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'RMSNormalization']);
const CHANNEL_OPS = new Set(['Add', 'Sub', 'Mul', 'Div']);

function isChannelVector(dims: number[]): boolean {
  return dims.length >= 1 && dims.slice(0, -1).every((d) => d === 1) && dims[dims.length - 1] > 1;
}

/** Does `name` (or a layout-only view of it) reach the batch's dataflow as a weight? */
function feedsAsWeight(name: string, dims: number[], consumers: Map<string, NodeProto[]>, dependent: Set<string>, depth = 0): boolean {
  if (depth > 4) return false;
  for (const n of consumers.get(name) ?? []) {
    const op = n.opType ?? '';
    if (WEIGHT_OPS.has(op)) return true;
    if (NORM_OPS.has(op) && n.input.indexOf(name) >= 1) return true;
    if (op === 'Gather' && n.input[0] === name && dependent.has(n.input[1])) return true;
    if (CHANNEL_OPS.has(op) && isChannelVector(dims) && n.input.some((i) => i !== name && dependent.has(i))) return true;
    if (LAYOUT_OPS.has(op) && n.input[0] === name && n.output[0] && feedsAsWeight(n.output[0], dims, consumers, dependent, depth + 1)) return true;
  }
  return false;
}

/** Each named weight's role and block, from the architecture map. */
export function rolesFromArchitecture(arch: ArchitectureMap): Map<string, { role: ParameterRole; block: number | null }> {
  const roles = new Map<string, { role: ParameterRole; block: number | null }>();
  const put = (name: string | null | undefined, role: ParameterRole, block: number | null): void => {
    if (name && !roles.has(name)) roles.set(name, { role, block });
  };
  for (const b of arch.blocks) {
    const a = b.attention;
    put(a.q, 'q', b.index); put(a.k, 'k', b.index); put(a.v, 'v', b.index); put(a.o, 'o', b.index); put(a.qkv, 'qkv', b.index);
    for (const bias of Object.values(a.biases)) put(bias, 'bias', b.index);
    put(b.mlp.gate, 'gate', b.index); put(b.mlp.up, 'up', b.index); put(b.mlp.down, 'down', b.index);
    for (const bias of Object.values(b.mlp.biases)) put(bias, 'bias', b.index);
    for (const n of b.norms) { put(n.weight, 'norm', b.index); put(n.bias, 'norm', b.index); }
  }
  put(arch.embedding, 'embedding', null);
  for (const e of arch.otherEmbeddings) put(e, 'embedding', null);
  if (!arch.tiedEmbedding) put(arch.lmHead, 'lm_head', null);
  if (arch.finalNorm) { put(arch.finalNorm.weight, 'norm', null); put(arch.finalNorm.bias, 'norm', null); }
  return roles;
}

/** Glob with `*` and `?` over a whole name. */
function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** A freeze rule: a role name ('o', 'v', 'norm', …) or a glob pattern on weight names. */
export function freezeMatcher(rules: string[]): (p: { name: string; role: ParameterRole }) => boolean {
  const roles = new Set<string>();
  const patterns: RegExp[] = [];
  for (const r of rules.map((s) => s.trim()).filter((s) => s !== '')) {
    if ((FREEZE_ROLES as readonly string[]).includes(r)) roles.add(r);
    else patterns.push(globToRegExp(r));
  }
  return (p) => roles.has(p.role) || patterns.some((re) => re.test(p.name));
}

/** The parameters of a training view, in graph order. */
export function findParameters(graph: GraphProto, dependent: Set<string>, arch: ArchitectureMap, sourceDtypes: Map<string, number>): TrainableParameter[] {
  const consumers = consumerMap(graph);
  const roles = rolesFromArchitecture(arch);
  const out: TrainableParameter[] = [];
  for (const t of graph.initializer as TensorProto[]) {
    const name = t.name ?? '';
    const dims = t.dims.map(Number);
    const count = dims.reduce((a, b) => a * b, 1);
    if (!isFloatDtype(t.dataType) || count < 2) continue;
    if (!feedsAsWeight(name, dims, consumers, dependent)) continue;
    const known = roles.get(name);
    const role: ParameterRole = known?.role ?? (dims.length === 1 ? 'bias' : 'other');
    const decay = decays(name, role, dims);
    out.push({ name, dims, role, block: known?.block ?? null, sourceDtype: sourceDtypes.get(name) ?? t.dataType ?? 1, decay });
  }
  if (out.length === 0) {
    throw new WhittleError('UNSUPPORTED_MODEL', 'Whittle found no trainable weights in this model (no float weights feed its MatMul, Gemm, Gather or normalization nodes). Quantized weights (MatMulNBits, QDQ) cannot be fine-tuned directly; train the float model.');
  }
  return out;
}
