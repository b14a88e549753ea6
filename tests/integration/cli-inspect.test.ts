/**
 * `whittle inspect --json` on every kind of fixture model, as a child process: one JSON document that is
 * exactly the engine's inspection, with the layout Whittle must recognise for each kind.
 */
import { describe, expect, it } from 'vitest';
import { ArchitectureSummary, type ModelInspection } from '../../preload/contract.ts';
import { inspectModel } from '../../main/engine/model/inspect.ts';
import { STORIES, fixture } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

const MODELS: { label: string; path: string; kind: ModelInspection['kind']; check(m: ModelInspection): void }[] = [
  {
    label: 'stories260K with a Hugging Face KV cache',
    path: STORIES.model,
    kind: 'decoder-hf-cache',
    check(m) {
      expect(m.decoder).toMatchObject({ layers: 5, kvHeads: 4, headSize: 8, vocabSize: 512 });
      expect(m.inputs.map((t) => t.name)).toContain('past_key_values.4.value');
      expect(m.externalDataFiles).toEqual([]);
    },
  },
  {
    label: 'GPT-2 with contrib ops and past_i caches (onnxruntime.transformers)',
    path: fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'),
    kind: 'decoder-genai-cache',
    check(m) {
      expect(m.opHistogram['com.microsoft.Attention']).toBe(5);
      expect(m.inputs.map((t) => t.name)).toContain('past_0');
    },
  },
  {
    label: 'Llama fp16 with external data (ORT GenAI model builder)',
    path: fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx'),
    kind: 'decoder-genai-cache',
    check(m) {
      expect(m.externalDataFiles).toHaveLength(1);
      expect(Object.keys(m.bytesByDtype)).toContain('float16');
      expect(m.decoder?.vocabSize).toBe(32000);
    },
  },
  {
    label: 'a single-operator graph (ONNX node test)',
    path: fixture('onnx', 'node-tests', 'test_matmul_2d', 'model.onnx'),
    kind: 'unknown',
    check(m) {
      expect(m.opHistogram).toEqual({ MatMul: 1 });
      expect(m.parameters).toBe(0);
    },
  },
];

describe('whittle inspect --json', () => {
  for (const model of MODELS) {
    it(`describes ${model.label}`, async () => {
      const r = await runCli(['inspect', model.path, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const doc = onlyJson(r) as ModelInspection;
      expect(doc.kind).toBe(model.kind);
      expect(doc.path).toBe(model.path);
      expect(doc.parameters).toBeGreaterThanOrEqual(0);
      model.check(doc);
      // The architecture map is part of the document and matches the contract's schema.
      expect(ArchitectureSummary.parse(doc.architecture)).toEqual(doc.architecture);
      // The CLI adds and drops nothing: the document is the engine's own inspection.
      expect(doc).toEqual(JSON.parse(JSON.stringify(await inspectModel(model.path))));
    });
  }

  it('prints a readable summary without --json', async () => {
    const r = await runCli(['inspect', STORIES.model]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kind\s+decoder-hf-cache$/m);
    expect(r.stdout).toMatch(/^parameters\s+.*264,133/m);
    expect(r.stdout).toMatch(/^decoder\s+5 layers, 4 KV heads, head size 8, vocabulary 512$/m);
    expect(r.stdout).toMatch(/^in\s+input_ids\s+int64\s+\[batch_size, sequence_length\]$/m);
    expect(r.stdout).toMatch(/^architecture\s+llama-like, 5 blocks, pre-norm$/m);
    expect(r.stdout).toMatch(/^attention\s+8 heads, 4 KV heads, head size 8$/m);
    expect(r.stdout).toMatch(/^embedding\s+model\.embed_tokens\.weight \(tied to the LM head\)$/m);
  });
});
