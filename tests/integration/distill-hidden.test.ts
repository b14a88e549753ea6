/**
 * Hidden-state matching: the composite head (KD on logits + the block outputs' squared distance to the
 * teacher's) on a 2-block student of the sample — its loss and gradients against a plain float64 reference
 * (tests/helpers/reference-ops.ts evaluates the student's view; the KD and hidden terms are written out
 * below) with finite differences on a sample of weights; and a short distillation with hidden matching
 * lowers the hidden term.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distillModel } from '../../main/engine/distill/distill-model.ts';
import { blockOutputs, hiddenDistillationObjective } from '../../main/engine/distill/hidden.ts';
import { writeStudentByBlocks } from '../../main/engine/distill/student.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import type { GraphProto } from '../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { buildTrainingView } from '../../main/engine/train/view.ts';
import { evaluateGraph, loadInitializers, refTensor } from '../helpers/reference-ops.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-hidden-');
afterAll(() => tmp.cleanup());
const B = 1, T = 8, TEMP = 2, ALPHA = 0.5, BETA = 0.7;

function logSoftmax(z: ArrayLike<number>, off: number, V: number, scale: number): Float64Array {
  const out = new Float64Array(V);
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, z[off + v] / scale);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(z[off + v] / scale - max);
  const lse = Math.log(s) + max;
  for (let v = 0; v < V; v++) out[v] = z[off + v] / scale - lse;
  return out;
}

describe('hidden-state matching', () => {
  it('the composite loss and its gradients match a float64 reference; a short run lowers the hidden term', async () => {
    const ctx = quietContext(tmp.dir);
    const student = await writeStudentByBlocks(STORIES.model, [0, 4], path.join(tmp.dir, 'student'), ctx, { tokenizerPath: STORIES.tokenizer });
    const objective = await hiddenDistillationObjective({ teacherPath: STORIES.model, studentPath: student.modelPath, kept: [0, 4], temperature: TEMP, alpha: ALPHA, reverse: false, weight: BETA, scratchDir: tmp.dir });
    const source = await readModel(student.modelPath);
    const view = await buildTrainingView(source, mapArchitecture(source), { batch: B, length: T, frozen: () => false, scratchDir: tmp.dir });
    const head = objective.head(view);
    const graph = compileTrainStep(view, head);
    await objective.prepare?.(view);
    const ids = [1, 72, 304, 45, 260, 13, 411, 99];
    const labels = [72, 304, 45, 260, 13, 411, 99, -1];
    const batch = { inputIds: BigInt64Array.from(ids.map(BigInt)), labels: BigInt64Array.from(labels.map(BigInt)) };
    const feeds = (await objective.feeds?.(batch)) ?? {};
    const weights32 = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
    const session = await StepSession.open(graph, view.trainable, weights32, [B, T], path.join(tmp.dir, 'train'));
    const got = await session.run(batch, feeds);
    await session.close();
    await objective.close?.();
    expect(got.parts.hidden).toBeGreaterThan(0);

    // float64 reference of the same loss.
    const teacherLogits = feeds.teacher_logits.data as Float32Array;
    const teacherHidden = [0, 1].map((j) => feeds[`teacher_hidden_${j}`].data as Float32Array);
    const studentHidden = blockOutputs(mapArchitecture(source), source.proto.graph as GraphProto, 'student');
    const g = view.model.graph as GraphProto;
    const constants = await loadInitializers(g);
    const V = view.vocab;
    const weights = new Map(view.trainable.map((p, i) => [p.name, Float64Array.from(weights32[i])]));
    const loss = (): number => {
      const values = new Map(constants);
      values.set('input_ids', refTensor(DataType.int64, [B, T], ids));
      for (const p of view.trainable) values.set(p.name, { dtype: DataType.float32, dims: p.dims, data: weights.get(p.name) ?? new Float64Array(0) });
      const env = evaluateGraph(g, values);
      const z = env.get(view.logits)!.data;
      let sum = 0;
      for (let r = 0; r < B * T; r++) {
        if (labels[r] < 0) continue;
        const ls = logSoftmax(z, r * V, V, TEMP);
        const lt = logSoftmax(teacherLogits, r * V, V, TEMP);
        let kl = 0;
        for (let v = 0; v < V; v++) kl += Math.exp(lt[v]) * (lt[v] - ls[v]);
        const ce = -logSoftmax(z, r * V, V, 1)[labels[r]];
        sum += ALPHA * TEMP * TEMP * kl + (1 - ALPHA) * ce;
      }
      const D = 64, c = BETA / (D * studentHidden.length);
      for (const [j, name] of studentHidden.entries()) {
        const h = env.get(name)!.data;
        for (let r = 0; r < B * T; r++) {
          if (labels[r] < 0) continue;
          for (let d = 0; d < D; d++) sum += c * (h[r * D + d] - teacherHidden[j][r * D + d]) ** 2;
        }
      }
      return sum;
    };
    const base = loss();
    expect(Math.abs(got.lossSum - base) / base).toBeLessThan(1e-4);
    const h = 1e-5;
    for (const p of view.trainable.filter((q) => q.role === 'q' || q.role === 'down' || q.role === 'norm')) {
      const i = view.trainable.indexOf(p);
      const w = weights.get(p.name)!;
      const gr = got.grads[i];
      const order = [...gr.keys()].sort((a, b) => Math.abs(gr[b]) - Math.abs(gr[a]));
      let diff = 0, norm = 0;
      for (const e of [order[0], order[1], order[2]]) {
        const keep = w[e];
        w[e] = keep + h; const up = loss();
        w[e] = keep - h; const down = loss();
        w[e] = keep;
        const fd = (up - down) / (2 * h);
        diff += (gr[e] - fd) ** 2; norm += fd ** 2;
      }
      expect(Math.sqrt(diff) / Math.sqrt(norm), p.name).toBeLessThan(1e-3);
    }

    // A short run: the hidden term falls.
    const config: TrainConfig = {
      textPath: calibrationTextFromEnd(tmp.dir, 300), tokenizerPath: STORIES.tokenizer, steps: 15, batch: 4, length: 32, accumulate: 1,
      lr: 2e-3, warmupSteps: 2, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 100, seed: 0, checkpointEvery: 0,
    };
    const r = await distillModel({
      teacherPath: STORIES.model, student: { kind: 'blocks', blocks: [0, 4] }, loss: { temperature: TEMP, alpha: ALPHA, reverse: false, hidden: BETA }, signal: { kind: 'logits' },
      config, outDir: path.join(tmp.dir, 'out'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt'), resume: false,
    }, ctx);
    const first = r.details.curve[0].parts?.hidden ?? 0, last = r.details.curve.at(-1)?.parts?.hidden ?? Infinity;
    expect(last).toBeLessThan(first);
  }, 180_000);
});
