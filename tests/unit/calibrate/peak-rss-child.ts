/**
 * Child process for calibration memory measurements: collects statistics of every distinct MatMul/Gemm
 * input of a model and prints one JSON line { baselineRssKb, peakRssKb, wallMs, rows, retainedKb } from
 * /proc/self/status (VmRSS before, VmHWM after). Run with --expose-gc, `retainedKb` is the JavaScript heap
 * plus external memory still held after a full collection at the end (null otherwise).
 * Run as `node peak-rss-child.ts model.onnx tokenizer.json text.txt samples length workDir [accumulators]`.
 */
import { readFileSync } from 'node:fs';
import { activationInputsFor, collectCalibrationStats, type AccumulatorKind } from '../../../main/engine/calibrate/index.ts';
import { quietContext } from '../../../main/engine/job-context.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { planTargets } from '../../../main/engine/quantize/targets.ts';

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const [modelPath, tokenizerPath, text, samples, length, workDir, kinds] = process.argv.slice(2);
const accumulators = (kinds ?? 'hessian,minmax,histogram,l2').split(',') as AccumulatorKind[];
const model = await readModel(modelPath);
const tensors = activationInputsFor(model, planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets).map((i) => i.tensor);
const baselineRssKb = statusKb('VmRSS');
const t0 = performance.now();
const stats = await collectCalibrationStats({
  modelPath, tokenizerPath, tensors, accumulators, calibration: { text, samples: Number(samples), length: Number(length), seed: 0 },
}, quietContext(workDir));
const wallMs = performance.now() - t0;
const rows = stats.get(tensors[0])?.rows ?? 0;
const gc = (globalThis as { gc?: () => void }).gc;
let retainedKb: number | null = null;
if (gc) {
  gc();
  const m = process.memoryUsage();
  retainedKb = Math.round((m.heapUsed + m.external) / 1024);
}
process.stdout.write(`${JSON.stringify({ baselineRssKb, peakRssKb: statusKb('VmHWM'), wallMs, rows, tensors: tensors.length, retainedKb })}\n`);
