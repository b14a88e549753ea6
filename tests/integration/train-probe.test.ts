/**
 * The static-shape probe on real models: stories260K (plain ops, empty KV cache) and the fp16 ORT GenAI
 * Llama (contrib ops, weights in external data). Every tensor gets a dtype and a static shape; the values
 * of the shape arithmetic come back and agree with the shapes themselves; the caller's model is unchanged.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWhittleError } from '../../main/engine/errors.ts';
import { DataType, isFloatDtype } from '../../main/engine/onnx/dtype.ts';
import { toNumber } from '../../main/engine/onnx/graph.ts';
import type { ModelProto } from '../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { probeTensors, type ProbeResult } from '../../main/engine/train/probe.ts';
import { decoderFeeds } from '../helpers/decoder-feeds.ts';
import { fixture, STORIES } from '../helpers/fixtures.ts';

const LLAMA_FP16 = path.join(fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16'), 'model.onnx');
const B = 2;
const T = 5;

/** Every initializer, graph input and named node output of the main graph has meta. */
function expectCompleteMeta(model: ModelProto, r: ProbeResult): void {
  const g = model.graph!;
  for (const t of g.initializer) expect(r.meta.get(t.name!)).toEqual({ dtype: t.dataType, shape: t.dims.map((d) => toNumber(d)) });
  for (const v of g.input) expect(r.meta.has(v.name!)).toBe(true);
  for (const n of g.node) for (const o of n.output) if (o !== '') expect(r.meta.has(o), o).toBe(true);
}

/** A Shape node's value is the shape of its input; a kept value has as many elements as its shape says. */
function expectConsistentValues(model: ModelProto, r: ProbeResult): number {
  let shapes = 0;
  for (const n of model.graph!.node) {
    if (n.opType !== 'Shape' || (n.domain ?? '') !== '') continue;
    const v = r.values.get(n.output[0]);
    expect(v, n.output[0]).toBeDefined();
    const start = n.attribute.find((a) => a.name === 'start');
    const end = n.attribute.find((a) => a.name === 'end');
    const full = r.meta.get(n.input[0])!.shape;
    const want = full.slice(start ? toNumber(start.i) : 0, end ? toNumber(end.i) : undefined);
    expect(Array.from(v!.data as BigInt64Array, Number)).toEqual(want);
    shapes++;
  }
  for (const [name, v] of r.values) {
    expect(v.data.length, name).toBe(v.shape.reduce((a, c) => a * c, 1));
    expect(isFloatDtype(v.dtype), name).toBe(false);
  }
  return shapes;
}

describe('probeTensors', () => {
  it('gives static shapes and shape values of stories260K with an empty cache', async () => {
    const model = await readModel(STORIES.model);
    const outputsBefore = model.proto.graph!.output.length;
    const r = await probeTensors(model.proto, decoderFeeds(model.proto, B, T, 512));
    expect(model.proto.graph!.output.length).toBe(outputsBefore);
    expectCompleteMeta(model.proto, r);
    expect(r.meta.get('input_ids')).toEqual({ dtype: DataType.int64, shape: [B, T] });
    expect(r.meta.get('past_key_values.0.key')).toEqual({ dtype: DataType.float32, shape: [B, 4, 0, 8] });
    expect(r.meta.get('logits')).toEqual({ dtype: DataType.float32, shape: [B, T, 512] });
    for (let l = 0; l < 5; l++) expect(r.meta.get(`present.${l}.value`)).toEqual({ dtype: DataType.float32, shape: [B, 4, T, 8] });
    expect(expectConsistentValues(model.proto, r)).toBeGreaterThan(0);
    expect(r.values.get('input_ids')!.data).toBeInstanceOf(BigInt64Array);
  });

  it('reads fp16 weights from external data and keeps the tensors the caller asks for', async () => {
    const model = await readModel(LLAMA_FP16);
    const r = await probeTensors(model.proto, decoderFeeds(model.proto, B, T, 32000), {
      keepValuesOf: (name, meta) => name === 'logits' || (!isFloatDtype(meta.dtype) && meta.shape.length <= 1),
    });
    expectCompleteMeta(model.proto, r);
    expect(r.meta.get('logits')).toEqual({ dtype: DataType.float16, shape: [B, T, 32000] });
    expect(r.meta.get('present.1.key')).toEqual({ dtype: DataType.float16, shape: [B, 1, T, 16] });
    const logits = r.values.get('logits')!;
    expect(logits.data).toBeInstanceOf(Uint16Array);
    expect(logits.data.length).toBe(B * T * 32000);
    expect([...r.values.values()].filter((v) => isFloatDtype(v.dtype))).toHaveLength(1);
    expect(r.values.has('attention_mask')).toBe(false); // 2-D: not asked for
  });

  it('limits values to small tensors by default', async () => {
    const model = await readModel(STORIES.model);
    const r = await probeTensors(model.proto, decoderFeeds(model.proto, B, T, 512), { maxValueElements: 4 });
    expect(r.values.has('input_ids')).toBe(false); // 10 elements
    for (const v of r.values.values()) expect(v.data.length).toBeLessThanOrEqual(4);
    expect(r.values.size).toBeGreaterThan(0);
  });

  it('gives the same answer when the outputs are fetched in small groups', async () => {
    const model = await readModel(STORIES.model);
    const feeds = decoderFeeds(model.proto, B, T, 512);
    const whole = await probeTensors(model.proto, feeds);
    const grouped = await probeTensors(model.proto, feeds, { maxBytesPerRun: 4096 });
    expect(grouped.meta).toEqual(whole.meta);
    expect(grouped.values).toEqual(whole.values);
  });

  it('names the graph inputs that have no feed', async () => {
    const model = await readModel(STORIES.model);
    const feeds = decoderFeeds(model.proto, B, T, 512);
    delete feeds['past_key_values.3.value'];
    const err = await probeTensors(model.proto, feeds).catch((e: unknown) => e);
    expect(isWhittleError(err) && err.code === 'INVALID_INPUT' && /past_key_values\.3\.value/.test(err.message)).toBe(true);
  });
});
