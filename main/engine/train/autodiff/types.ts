/**
 * The contract between the training view (which builds a forward graph with static shapes), the loss
 * heads and the autodiff (which appends the backward). Every tensor of a training graph has a known
 * dtype and a fully static shape: one graph is compiled per (batch B, sequence length T).
 */
import type { GraphProto, NodeProto, TensorProto } from '../../onnx/proto-types.ts';

/** Static element type (ONNX DataType id, e.g. DataType.float32) and shape of one tensor. */
export interface TensorMeta {
  dtype: number;
  shape: number[];
}

/** Tensor name → its static type and shape. Covers graph inputs, initializers and every node output. */
export type MetaMap = Map<string, TensorMeta>;

export interface DifferentiateRequest {
  /** The forward graph (plus loss nodes): nodes in topological order, standard ops only. */
  graph: GraphProto;
  meta: MetaMap;
  /** Tensors to differentiate with respect to (the trainable weights: graph inputs of float type). */
  wrt: string[];
  /**
   * Where the backward starts: ∂L/∂tensor is the existing tensor `grad` (same shape as `tensor`),
   * e.g. the loss head's fused ∂logits. Several seeds on one tensor are summed.
   */
  seeds: { tensor: string; grad: string }[];
  /** The graph's default-domain opset (the backward uses ops valid there); ≥ 17, default 17. */
  opset?: number;
}

export interface DifferentiateResult {
  /** Backward nodes, to be appended after the graph's own nodes (topologically ordered). */
  nodes: NodeProto[];
  /** Constants the backward nodes read. */
  initializers: TensorProto[];
  /** wrt name → name of its gradient tensor (same shape and dtype as the weight). */
  grads: Map<string, string>;
  /** Meta of every tensor the backward created. */
  meta: MetaMap;
  /** `wrt` tensors no seed reaches (their gradients are zeros). */
  unreached?: string[];
}
