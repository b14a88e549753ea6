import { quantizeBlockwise, cpuInfo, reference } from '../../main/engine/native/index.ts';
const K = 2048, N = 5632;
const w = new Float32Array(K * N).map(() => Math.random() - 0.5);
console.log(cpuInfo());
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await quantizeBlockwise(w, { k: K, n: N, bits: 4, blockSize: 32, symmetric: false });
  console.log('fast', (performance.now() - t0).toFixed(1), 'ms', (K * N / (performance.now() - t0) / 1e3).toFixed(0), 'M/s');
}
const t0 = performance.now();
reference.quantizeBlockwise(w, { k: K, n: N, bits: 4, blockSize: 32, symmetric: false });
console.log('ref', (performance.now() - t0).toFixed(1));
