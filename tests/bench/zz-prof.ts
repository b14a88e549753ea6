import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { quantizeBlockwise, getThreads } from '../../main/engine/native/index.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
const m = await readModel('/tmp/qscratch/model/model.onnx');
const inits = initializerMap(m.proto.graph!);
let tr = 0, tq = 0, bytes = 0;
for (const [name, t] of inits) {
  if (t.dims.length !== 2 || name.includes('embed')) continue;
  let t0 = performance.now();
  const b = await readTensorBytes(t);
  tr += performance.now() - t0; bytes += b.length;
  const w = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  t0 = performance.now();
  await quantizeBlockwise(w, { k: Number(t.dims[0]), n: Number(t.dims[1]), bits: 4, blockSize: 32, symmetric: false });
  tq += performance.now() - t0;
}
console.log({ threads: getThreads(), readMs: tr, quantMs: tq, GB: bytes / 1e9 });
