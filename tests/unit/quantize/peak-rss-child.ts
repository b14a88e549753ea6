/**
 * Child process for memory measurements: quantizes argv[2] into argv[3] with the step JSON argv[4]
 * (argv[5]: optional spool memory budget in bytes) and prints one JSON line { baselineRssKb, peakRssKb,
 * wallMs, … } read from /proc/self/status (VmRSS, VmHWM).
 * Run as `node peak-rss-child.ts model.onnx outDir '{"bits":4}' [spoolBytes]`.
 */
import { readFileSync } from 'node:fs';
import { quietContext } from '../../../main/engine/job-context.ts';
import { quantizeWeightOnly } from '../../../main/engine/quantize/weight-only.ts';
import { QuantizeRtnStep } from '../../../preload/recipe.ts';

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const [modelPath, outDir, stepJson, spool] = process.argv.slice(2);
const step = QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', ...JSON.parse(stepJson ?? '{}') });
const baselineRssKb = statusKb('VmRSS');
const t0 = performance.now();
const r = await quantizeWeightOnly(modelPath, step, outDir, quietContext(outDir + '.work'), { spoolMemory: spool === undefined ? undefined : Number(spool) });
const wallMs = performance.now() - t0;
process.stdout.write(`${JSON.stringify({ baselineRssKb, peakRssKb: statusKb('VmHWM'), wallMs, quantized: r.quantized.length, bytes: r.bytes })}\n`);
