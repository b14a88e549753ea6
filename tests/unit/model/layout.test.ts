/**
 * Graph kind and decoder I/O layout: the three real decoder fixtures (HF cache names, GPT-2 past_i with
 * key and value stacked, ORT GenAI fp16 with MultiHeadAttention), plus small synthetic graphs for a
 * decoder without cache, an encoder and something else.
 */
import { describe, expect, it } from 'vitest';
import { cacheShape, detectDecoderLayout, detectGraphKind, matchCacheName } from '../../../main/engine/model/layout.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { DECODER_FIXTURES, emptyGraph, modelOf, nodeOf, nodeTestModels, valueInfo } from '../onnx/helpers.ts';

describe('decoder fixtures', () => {
  it('stories260K: Hugging Face cache names, [batch, 4, past, 8]', async () => {
    const l = detectDecoderLayout(await readModel(DECODER_FIXTURES.stories));
    expect(l.kind).toBe('decoder-hf-cache');
    expect([l.inputIds.name, l.attentionMask, l.positionIds, l.logits.name]).toEqual(['input_ids', null, null, 'logits']);
    expect(l.past.map((p) => p.name)).toEqual([0, 1, 2, 3, 4].flatMap((i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]));
    expect(l.present.map((p) => p.name)).toEqual([0, 1, 2, 3, 4].flatMap((i) => [`present.${i}.key`, `present.${i}.value`]));
    expect(l.past[1]).toEqual({ name: 'past_key_values.0.value', layer: 0, role: 'value', dtype: 'float32', shape: ['batch_size', 4, 'past_sequence_length', 8], batchAxis: 0, seqAxis: 2 });
    expect(cacheShape(l.past[0], l, 1, 0)).toEqual([1, 4, 0, 8]);
    expect({ layers: l.layers, kvHeads: l.kvHeads, headSize: l.headSize, vocabSize: l.vocabSize }).toEqual({ layers: 5, kvHeads: 4, headSize: 8, vocabSize: 512 });
  });

  it('tiny GPT-2 (onnxruntime.transformers): past_i holds key and value, [2, batch, 4, past, 8], int32 ids', async () => {
    const l = detectDecoderLayout(await readModel(DECODER_FIXTURES.gpt2));
    expect(l.kind).toBe('decoder-genai-cache');
    expect([l.inputIds.dtype, l.attentionMask?.name, l.positionIds?.name]).toEqual(['int32', 'attention_mask', 'position_ids']);
    expect(l.past.map((p) => [p.name, p.role, p.layer])).toEqual([0, 1, 2, 3, 4].map((i) => [`past_${i}`, 'kv', i]));
    expect(l.present.map((p) => p.name)).toEqual([0, 1, 2, 3, 4].map((i) => `present_${i}`));
    expect([l.past[0].batchAxis, l.past[0].seqAxis]).toEqual([1, 3]);
    expect(cacheShape(l.past[0], l, 2, 3)).toEqual([2, 2, 4, 3, 8]);
    expect({ layers: l.layers, kvHeads: l.kvHeads, headSize: l.headSize, vocabSize: l.vocabSize }).toEqual({ layers: 5, kvHeads: 4, headSize: 8, vocabSize: 1000 });
  });

  it('tiny Llama fp16 (ORT GenAI builder): HF names feeding MultiHeadAttention count as the GenAI layout', async () => {
    const l = detectDecoderLayout(await readModel(DECODER_FIXTURES.llama));
    expect(l.kind).toBe('decoder-genai-cache');
    expect(l.past.map((p) => `${p.name}:${p.dtype}`)).toEqual(['past_key_values.0.key:float16', 'past_key_values.0.value:float16', 'past_key_values.1.key:float16', 'past_key_values.1.value:float16']);
    expect(l.logits).toEqual({ name: 'logits', dtype: 'float16', shape: ['batch_size', 'sequence_length', 32000] });
    expect(cacheShape(l.present[3], l, 1, 7)).toEqual([1, 1, 7, 16]);
    expect({ layers: l.layers, kvHeads: l.kvHeads, headSize: l.headSize, vocabSize: l.vocabSize }).toEqual({ layers: 2, kvHeads: 1, headSize: 16, vocabSize: 32000 });
  });
});

describe('synthetic graphs', () => {
  const embed = makeTensor('embed', DataType.float32, [50, 8], new Float32Array(400));
  const head = makeTensor('head', DataType.float32, [8, 50], new Float32Array(400));

  it('a decoder without cache; vocabulary from the embedding when logits are symbolic', () => {
    const m = modelOf(emptyGraph({
      node: [nodeOf('Gather', ['embed', 'input_ids'], ['h']), nodeOf('MatMul', ['h', 'head'], ['logits'])],
      initializer: [embed, head],
      input: [valueInfo('input_ids', DataType.int64, ['b', 's']), valueInfo('attention_mask', DataType.int64, ['b', 's'])],
      output: [valueInfo('logits', DataType.float32, ['b', 's', 'vocab'])],
    }));
    expect(detectGraphKind(m)).toBe('decoder');
    const l = detectDecoderLayout(m);
    expect([l.kind, l.attentionMask?.name, l.past, l.present, l.vocabSize, l.layers]).toEqual(['decoder', 'attention_mask', [], [], 50, undefined]);
  });

  it('an encoder (token_type_ids, last_hidden_state), which detectDecoderLayout refuses', () => {
    const m = modelOf(emptyGraph({
      node: [nodeOf('Gather', ['embed', 'input_ids'], ['last_hidden_state'])],
      initializer: [embed],
      input: [valueInfo('input_ids', DataType.int64, ['b', 's']), valueInfo('attention_mask', DataType.int64, ['b', 's']), valueInfo('token_type_ids', DataType.int64, ['b', 's'])],
      output: [valueInfo('last_hidden_state', DataType.float32, ['b', 's', 8])],
    }));
    expect(detectGraphKind(m)).toBe('encoder');
    expect(() => detectDecoderLayout(m)).toThrow('This model is an encoder (no next-token logits).');
  });

  it('a classifier with 2-D logits is an encoder; a node test is unknown', async () => {
    const m = modelOf(emptyGraph({
      node: [nodeOf('Gather', ['embed', 'input_ids'], ['h']), nodeOf('ReduceMean', ['h'], ['logits'])],
      initializer: [embed],
      input: [valueInfo('input_ids', DataType.int64, ['b', 's'])],
      output: [valueInfo('logits', DataType.float32, ['b', 2])],
    }));
    expect(detectGraphKind(m)).toBe('encoder');
    const nodeTest = await readModel(nodeTestModels()[0].model);
    expect(detectGraphKind(nodeTest)).toBe('unknown');
    expect(() => detectDecoderLayout(nodeTest)).toThrowError(expect.objectContaining({ code: 'UNSUPPORTED_MODEL' }));
  });

  it('recognises the common cache names', () => {
    expect(matchCacheName('past_key_values.12.key', 'past')).toEqual({ layer: 12, role: 'key' });
    expect(matchCacheName('past.3.value', 'past')).toEqual({ layer: 3, role: 'value' });
    expect(matchCacheName('past_key_values_0_value', 'past')).toEqual({ layer: 0, role: 'value' });
    expect(matchCacheName('past_key_2', 'past')).toEqual({ layer: 2, role: 'key' });
    expect(matchCacheName('past_7', 'past')).toEqual({ layer: 7, role: 'kv' });
    expect(matchCacheName('present.1.key', 'present')).toEqual({ layer: 1, role: 'key' });
    expect(matchCacheName('present_key_values.1.value', 'present')).toEqual({ layer: 1, role: 'value' });
    expect(matchCacheName('present_4', 'present')).toEqual({ layer: 4, role: 'kv' });
    expect(matchCacheName('input_ids', 'past')).toBeNull();
    expect(matchCacheName('past_key_values.0.key', 'present')).toBeNull();
  });
});
