import { f32ToF16, quantizeBlockwise, dequantizeBlockwise, setThreads, setForceBaseline } from '../../main/engine/native/index.ts';
const k = 4096, n = 4096;
const w32 = new Float32Array(k * n);
let a = 1;
for (let i = 0; i < w32.length; i++) { a = (a * 1103515245 + 12345) >>> 0; w32[i] = a / 2 ** 32 - 0.5; }
const w16 = await f32ToF16(w32);
setThreads(Number(process.argv[2] ?? 1));
if (process.argv[3] === 'base') setForceBaseline(true);
const rounds = 7;
async function run(label: string, fn: () => Promise<unknown>) {
  let bestWall = Infinity, bestCpu = Infinity;
  for (let i = 0; i < rounds; i++) {
    const c0 = process.cpuUsage(); const t0 = performance.now();
    await fn();
    const wall = performance.now() - t0; const c = process.cpuUsage(c0);
    bestWall = Math.min(bestWall, wall); bestCpu = Math.min(bestCpu, (c.user + c.system) / 1000);
  }
  console.log(`${label.padEnd(24)} wall ${bestWall.toFixed(1).padStart(6)} ms  cpu ${bestCpu.toFixed(1).padStart(6)} ms  (${(k*n/1e6/bestCpu).toFixed(2)} Gw/s cpu)`);
}
for (const [bits, sym] of [[4, true], [4, false], [8, true]] as const) {
  await run(`fp32 ${bits} ${sym ? 'sym' : 'asym'}`, () => quantizeBlockwise(w32, { k, n, bits, blockSize: 32, symmetric: sym }));
  await run(`fp16 ${bits} ${sym ? 'sym' : 'asym'}`, () => quantizeBlockwise(w16, { k, n, bits, blockSize: 32, symmetric: sym, weightIsFp16: true }));
}
const q = await quantizeBlockwise(w32, { k, n, bits: 4, blockSize: 32, symmetric: false });
await run('dequant 4 asym', () => dequantizeBlockwise(q));
