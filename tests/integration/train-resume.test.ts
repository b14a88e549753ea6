/**
 * Kill -9 during training, then resume: the run continues from its last complete checkpoint, the loss
 * curve goes on where the checkpoint left it, and the final weights equal those of an uninterrupted run
 * with the same seed, bit for bit. A cancelled run (abort signal) checkpoints where it stopped and
 * resumes the same way. A checkpoint of another model is refused before any work.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig, TrainPoint, TrainRequest } from '../../main/engine/train/types.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-resume-');
afterAll(() => tmp.cleanup());
const CHILD = path.resolve(__dirname, '..', 'helpers', 'train-child.ts');

function config(): TrainConfig {
  return {
    textPath: calibrationTextFromEnd(tmp.dir, 300), tokenizerPath: STORIES.tokenizer, steps: 24, batch: 4, length: 32, accumulate: 2,
    lr: 1e-3, warmupSteps: 3, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 100, seed: 7, checkpointEvery: 4,
  };
}

function request(name: string): TrainRequest {
  return { modelPath: STORIES.model, outDir: path.join(tmp.dir, `${name}-out`), deliver: 'final', checkpointDir: path.join(tmp.dir, `${name}-ckpt`), resume: false, config: config() };
}

async function trainedWeights(modelPath: string): Promise<Map<string, Uint8Array>> {
  const m = await readModel(modelPath);
  const out = new Map<string, Uint8Array>();
  for (const [name, t] of initializerMap(m.proto.graph!)) out.set(name, await readTensorBytes(t));
  return out;
}

/** Starts the training in a child process and SIGKILLs it once a checkpoint at `afterStep` or later exists. */
function runAndKill(req: TrainRequest, afterStep: number): Promise<TrainPoint[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(req)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const points: TrainPoint[] = [];
    let buffer = '', errors = '';
    child.stderr.on('data', (d: Buffer) => { errors += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('point ')) points.push(JSON.parse(line.slice(6)) as TrainPoint);
      }
      const saved = existsSync(req.checkpointDir) ? readdirSync(req.checkpointDir).filter((f) => /^step-\d+$/.test(f)).map((f) => Number(f.slice(5))) : [];
      if (saved.some((s) => s >= afterStep) && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(points);
      else reject(new Error(`the training process ended by itself (${code}) before it was killed: ${errors}`));
    });
  });
}

describe('checkpoints and resume', () => {
  it('kill -9, resume: the curve continues and the final weights equal an uninterrupted run bit for bit', async () => {
    const straight = await trainModel(request('straight'), quietContext(tmp.dir));

    const killedReq = request('killed');
    const before = await runAndKill(killedReq, 8);
    expect(before.length).toBeGreaterThanOrEqual(8);
    expect(before.length).toBeLessThan(24);
    const resumed = await trainModel({ ...killedReq, resume: true }, quietContext(tmp.dir));
    const from = resumed.details.resumedFromStep ?? 0;
    expect(from).toBeGreaterThanOrEqual(8);
    expect(from % 4).toBe(0);

    // The curve: steps 1..from come from the checkpoint, the rest from the resumed run — all equal to the straight run.
    expect(resumed.details.curve.map((p) => p.step)).toEqual(straight.details.curve.map((p) => p.step));
    for (const [i, p] of resumed.details.curve.entries()) {
      expect(p.loss, `step ${p.step}`).toBe(straight.details.curve[i].loss);
      expect(p.lr).toBe(straight.details.curve[i].lr);
    }
    for (const p of before.filter((q) => q.step <= from)) expect(p.loss).toBe(straight.details.curve[p.step - 1].loss);

    const a = await trainedWeights(straight.folder.modelPath);
    const b = await trainedWeights(resumed.folder.modelPath);
    for (const [name, bytes] of a) expect(Buffer.compare(Buffer.from(bytes), Buffer.from(b.get(name)!)), name).toBe(0);
  }, 300_000);

  it('a cancelled run checkpoints where it stopped and resumes to the same result', async () => {
    const straight = await trainModel(request('straight2'), quietContext(tmp.dir));
    const req = request('cancelled');
    const abort = new AbortController();
    let cancelled = false;
    try {
      await trainModel({ ...req, onPoint: (p) => { if (p.step === 6) abort.abort(); } }, quietContext(tmp.dir, abort.signal));
    } catch (e) {
      cancelled = isWhittleError(e) && e.code === 'CANCELLED';
    }
    expect(cancelled).toBe(true);
    expect(existsSync(req.outDir)).toBe(false);
    expect(readdirSync(req.checkpointDir)).toContain('step-000006');
    const resumed = await trainModel({ ...req, resume: true }, quietContext(tmp.dir));
    expect(resumed.details.resumedFromStep).toBe(6);
    expect(resumed.details.finalLoss).toBe(straight.details.finalLoss);
  }, 300_000);

  it('refuses a checkpoint of another model before any work', async () => {
    const req = request('straight');
    const other = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
    const err = await trainModel({ ...req, modelPath: other, outDir: path.join(tmp.dir, 'other-out'), resume: true }, quietContext(tmp.dir)).catch((e: unknown) => e);
    expect(isWhittleError(err) && err.code).toBe('INVALID_INPUT');
    expect((err as Error).message).toMatch(/another model/);
  }, 120_000);
});
