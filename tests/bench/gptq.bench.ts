/**
 * GPTQ per layer (native-kernels/src/gptq.cc, hessian.cc, linalg.cc) on random calibration data, with
 * 1 and 2 threads (setThreads) and on each SIMD path this CPU has (setSimdLimit: avx512, avx2), against RTN
 * (quantizeBlockwise) in the same run:
 *
 *   hessian   hessianAccumulate of `rows` tokens (the calibration cost per batch of that size)
 *   prepare   prepareHessian: damping, float64 Cholesky of the reversed H, triangular inverse  (O(d_in³))
 *   sweep     gptqSweep: the column sweep with lazy batch updates                           (O(d_out·d_in²))
 *   gptq      gptqQuantize = prepare + sweep
 *   rtn       quantizeBlockwise on the same weight; gptq / rtn is the price of GPTQ over RTN
 * 4-bit, group 128 (MatMulNBits block; --group=N), asymmetric, columnBlock 128, percdamp 0.01, act-order off.
 * Each figure is the best of `rounds` runs (default 2: the first run of a size also pays for page faults), the
 * paths interleaved run by run.
 * d_in × d_out = 2048 × 2048, 4096 × 4096 and 4096 × 11008 (a 7B model's MLP up projection; about 10 s
 * per configuration on one thread — --quick leaves it out).
 *
 * The last table puts the paths side by side: AVX2 time / AVX-512 time per layer and thread count.
 *
 *   $N tests/bench/gptq.bench.ts [--quick] [--rounds=N] [--rows=N] [--threads=1,2] [--group=128] [--simd=avx512,avx2]
 */
import {
  cpuInfo, getThreads, gptqQuantize, gptqSweep, hessianAccumulate, prepareHessian, quantizeBlockwise, setSimdLimit, setThreads, type SimdPath,
} from '../../main/engine/native/index.ts';
import { activations, flag, option, weight } from './helpers/bench-inputs.ts';

const rounds = Number(option('rounds', '2'));
const threadCounts = option('threads', '1,2').split(',').map(Number);
const group = Number(option('group', '128'));
const cpu = cpuInfo();
const available: SimdPath[] = cpu.avx512 ? ['avx512', 'avx2'] : cpu.simd === 'baseline' ? ['baseline'] : ['avx2'];
const paths = option('simd', available.join(',')).split(',').filter((p): p is SimdPath => (available as string[]).includes(p));
const shapes: [number, number][] = [[2048, 2048], [4096, 4096]];
if (!flag('quick')) shapes.push([4096, 11008]);

/** Best of `rounds` runs of fn on each path, the paths interleaved round by round (so load from other processes hits them alike). */
async function best(fn: () => Promise<unknown>): Promise<Map<SimdPath, number>> {
  const fastest = new Map<SimdPath, number>(paths.map((p) => [p, Infinity]));
  for (let i = 0; i < rounds; i++) {
    for (const p of paths) {
      setSimdLimit(p);
      const start = performance.now();
      await fn();
      fastest.set(p, Math.min(fastest.get(p) as number, (performance.now() - start) / 1000));
    }
  }
  return fastest;
}

interface Row { layer: string; simd: SimdPath; threads: number; hessian: number; prepare: number; sweep: number; gptq: number; rtn: number }
const rows: Row[] = [];
const fmt = (s: number): string => s.toFixed(s < 10 ? 2 : 1);

console.log(`CPU: ${cpu.simd}, ${cpu.hardwareThreads} hardware threads; paths ${paths.join(', ')}; group ${group}; rounds ${rounds}`);
for (const [k, n] of shapes) {
  const tokens = Number(option('rows', String(k)));
  const x = activations(tokens, k, k);
  const w = weight(k, n, n);
  const opts = { k, n, bits: 4 as const, blockSize: group, symmetric: false, columnBlock: 128 };
  for (const threads of threadCounts) {
    setThreads(threads);
    const sum = new Float32Array(k * k);
    const hessian = await best(async () => {
      sum.fill(0);
      await hessianAccumulate(sum, x, tokens, k);
    });
    setSimdLimit(paths[0]);
    const prepared = await prepareHessian(sum, k, tokens, { percdamp: 0.01 });
    const prepare = await best(() => prepareHessian(sum, k, tokens, { percdamp: 0.01 }));
    const sweep = await best(() => gptqSweep(w, prepared, opts));
    const gptq = await best(() => gptqQuantize(w, sum, tokens, { ...opts, percdamp: 0.01, actOrder: false }));
    const rtn = await best(() => quantizeBlockwise(w, opts));
    for (const simd of paths) {
      const at = (m: Map<SimdPath, number>): number => m.get(simd) as number;
      const row = { layer: `${k}×${n}`, simd, threads: getThreads(), hessian: at(hessian), prepare: at(prepare), sweep: at(sweep), gptq: at(gptq), rtn: at(rtn) };
      rows.push(row);
      console.log(`${row.layer} (${tokens} tokens), ${simd}, ${row.threads} thread(s): hessian ${fmt(row.hessian)} s, prepare ${fmt(row.prepare)} s, ` +
        `sweep ${fmt(row.sweep)} s, gptq ${fmt(row.gptq)} s, rtn ${(row.rtn * 1000).toFixed(1)} ms`);
    }
  }
}
setThreads(0);
setSimdLimit('auto');

console.log('\n| d_in × d_out | simd | threads | hessianAccumulate | prepareHessian | sweep | gptqQuantize | prepare share | RTN | gptq / rtn | 1→2 thread speed-up |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const single = rows.find((o) => o.layer === r.layer && o.simd === r.simd && o.threads === 1);
  const speedup = single && r.threads !== 1 ? `${(single.gptq / r.gptq).toFixed(2)}×` : '';
  console.log(`| ${r.layer} | ${r.simd} | ${r.threads} | ${fmt(r.hessian)} s | ${fmt(r.prepare)} s | ${fmt(r.sweep)} s | ${fmt(r.gptq)} s | ` +
    `${((100 * r.prepare) / (r.prepare + r.sweep)).toFixed(0)} % | ${(r.rtn * 1000).toFixed(1)} ms | ${Math.round(r.gptq / r.rtn)}× | ${speedup} |`);
}

if (paths.includes('avx512') && paths.includes('avx2')) {
  console.log('\n| d_in × d_out | threads | hessian AVX2 / AVX-512 | prepare AVX2 / AVX-512 | sweep AVX2 / AVX-512 | gptqQuantize AVX2 / AVX-512 | RTN AVX2 / AVX-512 |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows.filter((o) => o.simd === 'avx512')) {
    const base = rows.find((o) => o.layer === r.layer && o.threads === r.threads && o.simd === 'avx2');
    if (base) {
      const ratio = (key: 'hessian' | 'prepare' | 'sweep' | 'gptq' | 'rtn'): string => `${(base[key] / r[key]).toFixed(2)}×`;
      console.log(`| ${r.layer} | ${r.threads} | ${ratio('hessian')} | ${ratio('prepare')} | ${ratio('sweep')} | ${ratio('gptq')} | ${ratio('rtn')} |`);
    }
  }
}
