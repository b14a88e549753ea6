/**
 * Child process for calibration memory measurements: collects statistics of every distinct MatMul/Gemm
 * input of a model and prints one JSON line { baselineRssKb, peakRssKb, wallMs, rows, retainedKb } from
 * /proc/self/status (VmRSS before, VmHWM after). Run with --expose-gc, `retainedKb` is the JavaScript heap
 * plus external memory still held after a full collection at the end (null otherwise).
 * Run as `node peak-rss-child.ts model.onnx tokenizer.json text.txt samples length workDir [accumulators] [one-pass|sequential]`.
 * 'sequential' calibrates level by level (calibrate/sequential.ts) with the weights left as they are, so
 * both modes collect the same statistics and differ only in how the model is run.
 */
import { readFileSync } from 'node:fs';
import { activationInputsFor, collectCalibrationStats, type AccumulatorKind } from '../../../main/engine/calibrate/index.ts';
import { calibrateSequentially } from '../../../main/engine/calibrate/sequential.ts';
import { quietContext } from '../../../main/engine/job-context.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { planTargets } from '../../../main/engine/quantize/targets.ts';

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const [modelPath, tokenizerPath, text, samples, length, workDir, kinds, mode] = process.argv.slice(2);
const accumulators = (kinds ?? 'hessian,minmax,histogram,l2').split(',') as AccumulatorKind[];
const model = await readModel(modelPath);
const targets = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets;
const tensors = activationInputsFor(model, targets).map((i) => i.tensor);
const calibration = { text, samples: Number(samples), length: Number(length), seed: 0 };
const baselineRssKb = statusKb('VmRSS');
const t0 = performance.now();
let rows = 0;
if (mode === 'sequential') {
  await calibrateSequentially({
    model, targets, accumulators, calibration, tokenizerPath,
    compress: async (level) => { rows = level.stats.values().next().value?.rows ?? rows; return new Map(); },
  }, quietContext(workDir));
} else {
  const stats = await collectCalibrationStats({ modelPath, tokenizerPath, tensors, accumulators, calibration }, quietContext(workDir));
  rows = stats.get(tensors[0])?.rows ?? 0;
}
const wallMs = performance.now() - t0;
const gc = (globalThis as { gc?: () => void }).gc;
let retainedKb: number | null = null;
if (gc) {
  gc();
  const m = process.memoryUsage();
  retainedKb = Math.round((m.heapUsed + m.external) / 1024);
}
process.stdout.write(`${JSON.stringify({ baselineRssKb, peakRssKb: statusKb('VmHWM'), wallMs, rows, tensors: tensors.length, retainedKb })}\n`);
