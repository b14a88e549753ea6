import { open } from 'node:fs/promises';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { quantizeBlockwise } from '../../main/engine/native/index.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
const m = await readModel('/tmp/qscratch/model/model.onnx');
const inits = [...initializerMap(m.proto.graph!)].filter(([n, t]) => t.dims.length === 2 && !n.includes('embed'));
const buf = new Uint8Array(262144000);
let tr = 0, tq = 0;
const fh = await open('/tmp/qscratch/model/model.onnx.data', 'r');
for (const [, t] of inits) {
  const src = t.data as { offset: number; length: number };
  let t0 = performance.now();
  let done = 0;
  while (done < src.length) done += (await fh.read(buf, done, src.length - done, src.offset + done)).bytesRead;
  tr += performance.now() - t0;
  const w = new Float32Array(buf.buffer, 0, src.length / 4);
  t0 = performance.now();
  await quantizeBlockwise(w, { k: Number(t.dims[0]), n: Number(t.dims[1]), bits: 4, blockSize: 32, symmetric: false });
  const dt = performance.now() - t0; tq += dt; if (t.name!.includes("layers.0.") || t.name!.includes("lm_head")) console.log(t.name, t.dims.join("x"), dt.toFixed(1), "ms", (src.length / 4 / dt / 1e3).toFixed(0), "M/s");
}
console.log({ readMs: tr, quantMs: tq });
