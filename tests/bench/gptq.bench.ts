/**
 * GPTQ per layer (native-kernels/src/gptq.cc, hessian.cc, linalg.cc) on random calibration data, with
 * 1 and 2 threads (setThreads), against RTN (quantizeBlockwise) in the same run:
 *
 *   hessian   hessianAccumulate of `rows` tokens (the calibration cost per batch of that size)
 *   prepare   prepareHessian: damping, float64 Cholesky of the reversed H, triangular inverse  (O(d_in³))
 *   sweep     gptqSweep: the column sweep with lazy batch updates                           (O(d_out·d_in²))
 *   gptq      gptqQuantize = prepare + sweep
 *   rtn       quantizeBlockwise on the same weight; gptq / rtn is the price of GPTQ over RTN
 * 4-bit, group 128 (MatMulNBits block), asymmetric, columnBlock 128, percdamp 0.01, act-order off.
 * Each figure is the best of `rounds` runs (default 2: the first run of a size also pays for page faults).
 * d_in × d_out = 2048 × 2048, 4096 × 4096 and 4096 × 11008 (a 7B model's MLP up projection; about 10 s
 * per configuration on one thread — --quick leaves it out).
 *
 *   $N tests/bench/gptq.bench.ts [--quick] [--rounds=N] [--rows=N] [--threads=1,2]
 */
import {
  cpuInfo, getThreads, gptqQuantize, gptqSweep, hessianAccumulate, prepareHessian, quantizeBlockwise, setThreads,
} from '../../main/engine/native/index.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const rounds = Number(option('rounds', '2'));
const threadCounts = option('threads', '1,2').split(',').map(Number);
const shapes: [number, number][] = [[2048, 2048], [4096, 4096]];
if (!args.includes('--quick')) shapes.push([4096, 11008]);

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** X [rows × d]: 16 latent factors mixed into every input, per-input scales 0.1..10, noise. */
function activations(rows: number, d: number, seed: number): Float32Array {
  const next = seeded(seed);
  const factors = 16;
  const mix = Float32Array.from({ length: factors * d }, () => next() * 2 - 1);
  const scale = Float32Array.from({ length: d }, () => 10 ** (next() * 2 - 1));
  const x = new Float32Array(rows * d);
  const z = new Float32Array(factors);
  for (let t = 0; t < rows; t++) {
    for (let f = 0; f < factors; f++) z[f] = next() * 2 - 1;
    const row = x.subarray(t * d, (t + 1) * d);
    for (let i = 0; i < d; i++) {
      let v = 0.3 * (next() * 2 - 1);
      for (let f = 0; f < factors; f++) v += mix[f * d + i] * z[f];
      row[i] = v * scale[i];
    }
  }
  return x;
}

function weight(k: number, n: number, seed: number): Float32Array {
  const next = seeded(seed);
  return Float32Array.from({ length: k * n }, () => (next() + next() + next() - 1.5) * 0.05);
}

async function best(fn: () => Promise<unknown>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await fn();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest / 1000;
}

interface Row { layer: string; threads: number; hessian: number; prepare: number; sweep: number; gptq: number; rtn: number }
const rows: Row[] = [];
const fmt = (s: number): string => s.toFixed(s < 10 ? 2 : 1);

console.log(`CPU: ${cpuInfo().simd}, ${cpuInfo().hardwareThreads} hardware threads; rounds ${rounds}`);
for (const [k, n] of shapes) {
  const tokens = Number(option('rows', String(k)));
  const x = activations(tokens, k, k);
  const w = weight(k, n, n);
  const opts = { k, n, bits: 4 as const, blockSize: 128, symmetric: false, columnBlock: 128 };
  for (const threads of threadCounts) {
    setThreads(threads);
    const sum = new Float32Array(k * k);
    const hessian = await best(async () => {
      sum.fill(0);
      await hessianAccumulate(sum, x, tokens, k);
    });
    let prepared = await prepareHessian(sum, k, tokens, { percdamp: 0.01 });
    const prepare = await best(async () => { prepared = await prepareHessian(sum, k, tokens, { percdamp: 0.01 }); });
    const sweep = await best(() => gptqSweep(w, prepared, opts));
    const gptq = await best(() => gptqQuantize(w, sum, tokens, { ...opts, percdamp: 0.01, actOrder: false }));
    const rtn = await best(() => quantizeBlockwise(w, opts));
    const row = { layer: `${k}×${n}`, threads: getThreads(), hessian, prepare, sweep, gptq, rtn };
    rows.push(row);
    console.log(`${row.layer} (${tokens} tokens), ${row.threads} thread(s): hessian ${fmt(hessian)} s, prepare ${fmt(prepare)} s, ` +
      `sweep ${fmt(sweep)} s, gptq ${fmt(gptq)} s, rtn ${(rtn * 1000).toFixed(1)} ms`);
  }
}
setThreads(0);

console.log('\n| d_in × d_out | threads | hessianAccumulate (rows = d_in) | prepareHessian | sweep | gptqQuantize | prepare share | RTN | gptq / rtn | 1→2 thread speed-up |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const single = rows.find((o) => o.layer === r.layer && o.threads === 1);
  const speedup = single && r.threads !== 1 ? `${(single.gptq / r.gptq).toFixed(2)}×` : '';
  console.log(`| ${r.layer} | ${r.threads} | ${fmt(r.hessian)} s | ${fmt(r.prepare)} s | ${fmt(r.sweep)} s | ${fmt(r.gptq)} s | ` +
    `${((100 * r.prepare) / (r.prepare + r.sweep)).toFixed(0)} % | ${(r.rtn * 1000).toFixed(1)} ms | ${Math.round(r.gptq / r.rtn)}× | ${speedup} |`);
}
