/**
 * Runs a compiled step graph on onnxruntime-node: the graph is written once to a scratch folder (frozen
 * weights in external data), loaded with a pinned optimization level, and fed the batch and the live
 * float32 master weights without copying them (ort.Tensor views of the optimizer's arrays).
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import { writeModel } from '../onnx/writer.ts';
import type { StepGraph } from './step-graph.ts';
import type { TrainableParameter } from './parameters.ts';
import { LABELS } from './loss-head.ts';

/** The graph optimization level every training session uses, so that runs and resumed runs compute alike. */
export const TRAINING_GRAPH_OPTIMIZATION: NonNullable<ort.InferenceSession.SessionOptions['graphOptimizationLevel']> = 'all';

export interface StepRun {
  lossSum: number;
  tokenCount: number;
  /** The head's extra scalar sums (see LossOutputs.parts). */
  parts: Record<string, number>;
  /** Gradients in the order of the trainable parameters (onnxruntime-owned arrays, valid until the next run). */
  grads: Float32Array[];
}

export interface Batch {
  /** [B·T] token ids and next-token labels (−1 = not counted). */
  inputIds: BigInt64Array;
  labels: BigInt64Array;
  /** The labels' shape when it is not [B, T] (a classifier's labels are [B]). */
  labelShape?: readonly number[];
}

export class StepSession {
  private readonly session: ort.InferenceSession;
  private readonly graph: StepGraph;
  private readonly dims: [number, number];
  private readonly weightFeeds: Record<string, ort.Tensor>;
  private readonly dir: string;
  private readonly idsInt32: boolean;

  private constructor(session: ort.InferenceSession, graph: StepGraph, dims: [number, number], weightFeeds: Record<string, ort.Tensor>, dir: string) {
    this.idsInt32 = graph.meta.get('input_ids')?.dtype === DataType.int32;
    this.session = session;
    this.graph = graph;
    this.dims = dims;
    this.weightFeeds = weightFeeds;
    this.dir = dir;
  }

  /** Writes `graph` under `dir` and opens it. `weights` are the live master weights (same order as `params`). */
  static async open(graph: StepGraph, params: TrainableParameter[], weights: Float32Array[], dims: [number, number], dir: string, threads = 0): Promise<StepSession> {
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'model.onnx');
    await writeModel(graph.model, file, { externalData: 'auto', threshold: 1024, dataFileName: 'model.onnx.data' });
    const options: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: TRAINING_GRAPH_OPTIMIZATION,
      executionMode: 'sequential',
      enableMemPattern: true,
      enableCpuMemArena: true,
    };
    if (threads > 0) options.intraOpNumThreads = threads;
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, options);
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      throw new WhittleError('INTERNAL', `onnxruntime could not load the training graph: ${message.split('\n')[0]}`, { onnxruntime: message }, { cause: e });
    }
    const feeds: Record<string, ort.Tensor> = {};
    params.forEach((p, i) => { feeds[p.name] = new ort.Tensor('float32', weights[i], p.dims); });
    return new StepSession(session, graph, dims, feeds, dir);
  }

  /** One forward (+ backward) of a micro-batch; `extra` feeds the head's own inputs (teacher signal). */
  async run(batch: Batch, extra: Record<string, ort.Tensor> = {}): Promise<StepRun> {
    const [b, t] = this.dims;
    const feeds: Record<string, ort.Tensor> = {
      ...this.weightFeeds,
      input_ids: this.idsInt32 ? new ort.Tensor('int32', Int32Array.from(batch.inputIds, Number), [b, t]) : new ort.Tensor('int64', batch.inputIds, [b, t]),
      [LABELS]: new ort.Tensor('int64', batch.labels, batch.labelShape ?? [b, t]),
      ...extra,
    };
    const out = await this.session.run(feeds);
    const scalar = (name: string): number => Number((out[name].data as Float32Array)[0]);
    return {
      lossSum: scalar(this.graph.lossSum),
      tokenCount: scalar(this.graph.tokenCount),
      parts: Object.fromEntries(Object.entries(this.graph.parts).map(([k, name]) => [k, scalar(name)])),
      grads: this.graph.grads.map((g) => out[g].data as Float32Array),
    };
  }

  async close(): Promise<void> {
    await this.session.release();
    await rm(this.dir, { recursive: true, force: true });
  }
}
