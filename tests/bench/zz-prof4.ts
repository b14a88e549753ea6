import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { QuantizeRtnStep } from '../../preload/recipe.ts';
import { rmSync } from 'node:fs';
const out = '/tmp/qscratch/out4';
rmSync(out, { recursive: true, force: true });
const t0 = performance.now();
let last = t0;
const ctx = { signal: new AbortController().signal, workDir: '/tmp/qscratch', log() {}, progress(p: any) {
  const now = performance.now();
  if (p.phase !== 'quantize' || p.done % 10 === 0 || p.done === p.total) console.log(p.phase, p.done, p.total, (now - t0).toFixed(0), '+', (now - last).toFixed(0), p.message ?? '');
  last = now;
} };
await quantizeWeightOnly('/tmp/qscratch/model/model.onnx', QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: Number(process.argv[2] ?? 4) }), out, ctx as any);
console.log('total', (performance.now() - t0).toFixed(0));
