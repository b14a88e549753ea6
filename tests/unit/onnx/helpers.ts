/**
 * Shared pieces of the ONNX tests: the fixture model list, structural comparison "modulo tensor
 * locations", onnxruntime feeds built from TensorProtos, and a small model builder.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { dtypeName } from '../../../main/engine/onnx/dtype.ts';
import { allTensors } from '../../../main/engine/onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../../main/engine/onnx/proto-types.ts';
import { elementCount, readTensorBytes } from '../../../main/engine/onnx/tensor-data.ts';
import { fixture } from '../../helpers/fixtures.ts';

export const NODE_TESTS_DIR = fixture('onnx', 'node-tests');

export function nodeTestModels(): { id: string; model: string; dataDir: string }[] {
  return readdirSync(NODE_TESTS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({ id: d.name, model: path.join(NODE_TESTS_DIR, d.name, 'model.onnx'), dataDir: path.join(NODE_TESTS_DIR, d.name, 'test_data_set_0') }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

export const DECODER_FIXTURES = {
  stories: fixture('stories260K', 'stories260K-kv.onnx'),
  gpt2: fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'),
  llama: fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx'),
};

/** A deep copy of the parsed model with tensor payload locations reduced to their byte length. */
export function structure(proto: ModelProto): unknown {
  return JSON.parse(JSON.stringify(proto, (key, value) => {
    if (key === 'externalData' || key === 'dataLocation') return undefined;
    if (key === 'data' && value && typeof value === 'object' && 'kind' in value) {
      return { length: value.kind === 'bytes' ? value.bytes.length : value.length };
    }
    if (typeof value === 'bigint') return `${value}n`;
    if (value instanceof Uint8Array) return Array.from(value);
    if (value && typeof value === 'object' && value.type === 'Buffer' && Array.isArray(value.data)) return value.data;
    return value;
  }));
}

/** All tensor payloads of a model, in allTensors() order. */
export async function tensorPayloads(proto: ModelProto): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const t of allTensors(proto)) out.push(await readTensorBytes(t));
  return out;
}

const ORT_TYPES: Record<string, ort.Tensor.Type> = {
  float32: 'float32', float16: 'float16', float64: 'float64', int8: 'int8', uint8: 'uint8', int16: 'int16',
  uint16: 'uint16', int32: 'int32', uint32: 'uint32', int64: 'int64', uint64: 'uint64', bool: 'bool',
};

/** A TensorProto as an onnxruntime tensor (payload copied into a fresh, aligned typed array). */
export async function toOrtTensor(t: TensorProto): Promise<ort.Tensor> {
  const type = ORT_TYPES[dtypeName(t.dataType)];
  if (!type) throw new Error(`no ORT type for ${dtypeName(t.dataType)}`);
  const bytes = (await readTensorBytes(t)).slice();
  const dims = t.dims.map(Number);
  const n = elementCount(dims);
  const buf = bytes.buffer;
  const data = {
    float32: () => new Float32Array(buf, 0, n), float16: () => new Uint16Array(buf, 0, n), float64: () => new Float64Array(buf, 0, n),
    int8: () => new Int8Array(buf, 0, n), uint8: () => new Uint8Array(buf, 0, n), int16: () => new Int16Array(buf, 0, n),
    uint16: () => new Uint16Array(buf, 0, n), int32: () => new Int32Array(buf, 0, n), uint32: () => new Uint32Array(buf, 0, n),
    int64: () => new BigInt64Array(buf, 0, n), uint64: () => new BigUint64Array(buf, 0, n), bool: () => new Uint8Array(buf, 0, n),
  }[type as string];
  return new ort.Tensor(type, data!() as never, dims);
}

/** Runs a model file with onnxruntime and returns every output's raw bytes. */
export async function runBytes(modelPath: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Uint8Array>> {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    const bytes: Record<string, Uint8Array> = {};
    for (const [name, t] of Object.entries(out)) {
      const d = t.data as ArrayBufferView;
      bytes[name] = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
    }
    return bytes;
  } finally {
    await session.release();
  }
}

// ── building small models ───────────────────────────────────────────────────────────────────────────

export function valueInfo(name: string, elemType: number, shape: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    metadataProps: [],
  };
}

export function emptyGraph(parts: Partial<GraphProto> = {}): GraphProto {
  return {
    node: [], name: 'g', initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [],
    quantizationAnnotation: [], metadataProps: [], ...parts,
  };
}

export function modelOf(graph: GraphProto, opset = 17, extra: { domain: string; version: number }[] = []): ModelProto {
  return {
    irVersion: 8, opsetImport: [{ domain: '', version: opset }, ...extra], producerName: 'whittle-tests', graph,
    metadataProps: [], trainingInfo: [], functions: [], configuration: [],
  };
}

export function nodeOf(opType: string, input: string[], output: string[], name?: string): NodeProto {
  return { input, output, opType, ...(name ? { name } : {}), attribute: [], metadataProps: [], deviceConfigurations: [] };
}
