/**
 * The training view of a BERT-style encoder classifier (see view.ts for the decoder's):
 *   - data inputs input_ids [B, T] and attention_mask [B, T] (padded batches: 1 on tokens, 0 on padding);
 *     token_type_ids become zeros, position ids 0…T−1;
 *   - the kept output is the class logits [B, C] of a sequence-classification export.
 * An encoder that outputs a hidden state [B, T, D] (a feature-extraction export) first gets a
 * classification head (withClassificationHead): first-token pooling and a Linear [D, C] with a seeded
 * normal(0, 0.02) init and zero bias, written into the model so that the trained head is exported with it.
 */
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import { intAttr, makeNode } from '../onnx/graph.ts';
import type { GraphProto, OnnxModel, ValueInfoProto } from '../onnx/proto-types.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import { mulberry32 } from '../calibrate/prng.ts';
import type { ArchitectureMap } from '../rewrite/architecture.ts';
import { buildViewOfForm, type TrainingView, type TrainingViewOptions } from './view.ts';

export const ATTENTION_MASK = 'attention_mask';

export interface EncoderView extends TrainingView {
  /** Classes C of the logits [B, C] (the same as `vocab`). */
  classes: number;
  /** Whether the model takes an attention mask (fed per batch). */
  masked: boolean;
}

function dimsOf(v: ValueInfoProto): (number | string | undefined)[] {
  return v.type?.tensorType?.shape?.dim.map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : d.dimParam)) ?? [];
}

const HIDDEN_NAMES = ['last_hidden_state', 'hidden_states', 'sequence_output', 'token_embeddings'];

/** 2-D outputs of feature-extraction exports that are pooled embeddings, not class logits. */
const POOLED_NAMES = ['pooler_output', 'pooled_output', 'sentence_embedding', 'embeddings', 'text_embeds'];

/**
 * The class-logits output: 'logits' when it is 2-D, else the one 2-D float output that is not a pooled
 * embedding (pooler_output, sentence_embedding, …). Null when there is none.
 */
export function classLogitsOutput(graph: GraphProto): string | null {
  const twoD = graph.output.filter((o) => dimsOf(o).length === 2 && o.type?.tensorType?.elemType === DataType.float32 && !POOLED_NAMES.includes(o.name ?? ''));
  const named = twoD.find((o) => o.name === 'logits');
  if (named) return 'logits';
  return twoD.length === 1 ? (twoD[0].name ?? null) : null;
}

/** The hidden-state output [B, T, D] of a feature-extraction export. */
function hiddenOutput(graph: GraphProto): { name: string; dim: number } {
  const threeD = graph.output.filter((o) => dimsOf(o).length === 3);
  const pick = threeD.find((o) => HIDDEN_NAMES.includes(o.name ?? '')) ?? (threeD.length === 1 ? threeD[0] : undefined);
  if (!pick) {
    throw new WhittleError('UNSUPPORTED_MODEL', `Whittle found neither class logits [batch, classes] nor a hidden state [batch, sequence, dim] among this model's outputs (${graph.output.map((o) => o.name).join(', ')}). Export the encoder for sequence classification or feature extraction.`);
  }
  const dim = dimsOf(pick)[2];
  if (typeof dim !== 'number') throw new WhittleError('UNSUPPORTED_MODEL', `The hidden state ${pick.name} has no fixed width; Whittle needs it to size the classification head.`);
  return { name: pick.name ?? '', dim };
}

/**
 * The model with class logits [B, C] as its output 'logits': unchanged when it has them (C must equal
 * `classes`), else a head added on its hidden state (see the header). The returned model is in memory.
 */
export function withClassificationHead(source: OnnxModel, classes: number, seed = 0): OnnxModel {
  const graph = source.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  const existing = classLogitsOutput(graph);
  if (existing) {
    const out = graph.output.find((o) => o.name === existing);
    const c = out ? dimsOf(out)[1] : undefined;
    if (typeof c === 'number' && c !== classes) {
      throw new WhittleError('INVALID_INPUT', `The model classifies into ${c} classes but the labelled data has ${classes}. Use data with the model's classes, or a model exported without its classifier.`, { modelClasses: c, dataClasses: classes });
    }
    return source;
  }
  const { name: hidden, dim } = hiddenOutput(graph);
  // Linear [D, C]: normal(0, 0.02) from mulberry32(seed) by Box–Muller; bias 0.
  const rand = mulberry32(seed);
  const w = new Float32Array(dim * classes);
  for (let i = 0; i < w.length; i++) {
    const u1 = Math.max(rand.next(), 1e-12), u2 = rand.next();
    w[i] = 0.02 * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  const p = 'classifier';
  const nodes = [
    makeNode({ opType: 'Gather', inputs: [hidden, `${p}.first_token`], outputs: [`${p}/pooled`], name: `${p}/pool`, attributes: [intAttr('axis', 1)] }),
    makeNode({ opType: 'MatMul', inputs: [`${p}/pooled`, `${p}.weight`], outputs: [`${p}/matmul`], name: `${p}/matmul` }),
    makeNode({ opType: 'Add', inputs: [`${p}/matmul`, `${p}.bias`], outputs: ['logits'], name: `${p}/add` }),
  ];
  const initializers = [
    makeTensor(`${p}.first_token`, DataType.int64, [], BigInt64Array.of(0n)),
    makeTensor(`${p}.weight`, DataType.float32, [dim, classes], w),
    makeTensor(`${p}.bias`, DataType.float32, [classes], new Float32Array(classes)),
  ];
  const output: ValueInfoProto = {
    name: 'logits',
    type: { tensorType: { elemType: DataType.float32, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: classes }] } } },
    metadataProps: [],
  };
  const headed: GraphProto = { ...graph, node: [...graph.node, ...nodes], initializer: [...graph.initializer, ...initializers], output: [output] };
  return { ...source, proto: { ...source.proto, graph: headed } };
}

/** The training view of an encoder classifier (a model with class logits; see withClassificationHead). */
export async function buildEncoderView(source: OnnxModel, arch: ArchitectureMap, options: TrainingViewOptions): Promise<EncoderView> {
  const graph = source.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  const logits = classLogitsOutput(graph);
  if (!logits) throw new WhittleError('UNSUPPORTED_MODEL', 'This encoder has no class logits [batch, classes] output. Add a classification head first (withClassificationHead).');
  const masked = graph.input.some((v) => v.name === ATTENTION_MASK);
  const view = await buildViewOfForm(source, arch, options, { dataInputs: masked ? ['input_ids', ATTENTION_MASK] : ['input_ids'], output: () => logits });
  const shape = view.meta.get(view.logits)?.shape ?? [];
  if (shape.length !== 2 || shape[0] !== options.batch) throw new WhittleError('UNSUPPORTED_MODEL', `The class logits of this encoder are [${shape.join(', ')}], not [batch, classes].`);
  return { ...view, classes: shape[1], masked };
}
