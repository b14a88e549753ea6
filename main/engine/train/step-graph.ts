/**
 * The train-step graph: training view + loss head + backward, one graph per (B, T).
 *   inputs:  input_ids [B, T], labels [B, T], every trainable weight
 *   outputs: loss_sum, token_count, then ∂loss_sum/∂w for every trainable weight (same order)
 * and the evaluation graph: the same forward and loss, without the backward.
 */
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import type { GraphProto, ModelProto } from '../onnx/proto-types.ts';
import { differentiate } from './autodiff/differentiate.ts';
import type { MetaMap } from './autodiff/types.ts';
import { removeDeadNodes } from './fold.ts';
import { valueInfo } from './graph-io.ts';
import { defaultOpset, NodeSink, type LossHead } from './loss-head.ts';
import type { TrainingView } from './view.ts';

export interface StepGraph {
  model: ModelProto;
  meta: MetaMap;
  lossSum: string;
  tokenCount: string;
  /** Gradient output names, in the order of `view.trainable`. */
  grads: string[];
  /** The head's extra scalar sums, by name (graph outputs). */
  parts: Record<string, string>;
}

function withHead(view: TrainingView, head: LossHead): { graph: GraphProto; meta: MetaMap; sink: NodeSink; loss: ReturnType<LossHead['build']> } {
  const src = view.model.graph;
  if (!src) throw new WhittleError('INTERNAL', 'The training view has no graph.');
  const meta: MetaMap = new Map(view.meta);
  const sink = new NodeSink(meta, defaultOpset(view.model), 'loss/');
  const loss = head.build(sink, view.logits);
  const graph: GraphProto = {
    ...src,
    node: [...src.node, ...sink.nodes],
    initializer: [...src.initializer, ...sink.initializers],
    input: [...src.input, ...head.inputs],
    output: [],
  };
  return { graph, meta, sink, loss };
}

/** Forward + loss + backward. */
export function compileTrainStep(view: TrainingView, head: LossHead): StepGraph {
  const { graph, meta, loss } = withHead(view, head);
  const wrt = view.trainable.map((p) => p.name);
  const back = differentiate({ graph, meta, wrt, seeds: [{ tensor: view.logits, grad: loss.gradLogits }, ...(loss.seeds ?? [])] });
  for (const [k, v] of back.meta) meta.set(k, v);
  graph.node.push(...back.nodes);
  graph.initializer.push(...back.initializers);
  const grads = wrt.map((w) => {
    const g = back.grads.get(w);
    if (!g) throw new WhittleError('INTERNAL', `The backward graph has no gradient for ${w}.`);
    return g;
  });
  // A gradient that is the weight's own name cannot happen; one that is shared by two outputs gets an Identity.
  const scalar = { dtype: DataType.float32, shape: [] as number[] };
  graph.output = [valueInfo(loss.lossSum, meta.get(loss.lossSum) ?? scalar), valueInfo(loss.tokenCount, meta.get(loss.tokenCount) ?? scalar)];
  const parts = loss.parts ?? {};
  for (const name of Object.values(parts)) graph.output.push(valueInfo(name, meta.get(name) ?? scalar));
  const seen = new Set<string>([loss.lossSum, loss.tokenCount, ...Object.values(parts)]);
  const outNames: string[] = [];
  for (let i = 0; i < grads.length; i++) {
    let g = grads[i];
    if (seen.has(g) || wrt.includes(g)) {
      const alias = `grad_out/${wrt[i]}`;
      graph.node.push({ input: [g], output: [alias], opType: 'Identity', name: alias, attribute: [], metadataProps: [], deviceConfigurations: [] });
      meta.set(alias, meta.get(g) ?? { dtype: DataType.float32, shape: view.trainable[i].dims });
      g = alias;
    }
    seen.add(g);
    outNames.push(g);
    graph.output.push(valueInfo(g, meta.get(g) ?? { dtype: DataType.float32, shape: view.trainable[i].dims }));
  }
  removeDeadNodes(graph);
  return { model: { ...view.model, graph }, meta, lossSum: loss.lossSum, tokenCount: loss.tokenCount, grads: outNames, parts };
}

/** Forward + loss only (held-out loss): same inputs, outputs loss_sum and token_count. */
export function compileEvalStep(view: TrainingView, head: LossHead): StepGraph {
  const { graph, meta, loss } = withHead(view, head);
  const scalar = { dtype: DataType.float32, shape: [] as number[] };
  const parts = loss.parts ?? {};
  graph.output = [loss.lossSum, loss.tokenCount, ...Object.values(parts)].map((n) => valueInfo(n, meta.get(n) ?? scalar));
  removeDeadNodes(graph);
  return { model: { ...view.model, graph }, meta, lossSum: loss.lossSum, tokenCount: loss.tokenCount, grads: [], parts };
}
