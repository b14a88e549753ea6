/**
 * A history home filled with `count` realistic experiments, written through the repository (so the
 * full-text index and its triggers see them as they would see real runs): names by method and bits,
 * six models, every kind Whittle writes, mostly finished, eight metrics each, zero to three tags from a
 * skewed pool, notes on about half, a details document of a few kB, artefacts and log lines.
 * Deterministic for a seed.
 */
import type { Metric } from '../../../preload/contract.ts';
import { openHistory } from '../../../main/history/index.ts';

const MODELS = ['stories260K', 'stories15M', 'tinyllama-1.1b', 'qwen2.5-0.5b', 'phi-3-mini', 'smollm-135m'];
const TAGS = [
  'baseline', 'shipping', 'int4', 'int8', 'mobile', 'edge', 'ablation', 'sweep', 'keep', 'rerun', 'paper', 'regression',
  'calib-wikitext', 'calib-c4', 'long-context', 'group-32', 'group-128', 'draft', 'best', 'bad-eval', 'laptop', 'ci',
  'customer-a', 'customer-b', 'fp16', 'sparse', 'lora', 'kd', 'qat', 'tokenizer-fix', 'review', 'archived',
  'gpu', 'cpu', 'arm', 'x86', 'nightly', 'release', 'hot', 'cold',
];
const WORDS = (
  'the model quantized calibration perplexity rose fell slightly sharply after embedding layer attention mlp head '
  + 'weights outliers clipping group size scales zero point symmetric asymmetric per channel tensor block error loss '
  + 'hessian damping order act order sensitivity kept float sixteen eight four bits compared against original baseline '
  + 'decode speed prefill latency memory footprint disk size smaller larger faster slower good bad promising retry '
  + 'sweep grid sample text wikitext tinystories held out split tokens documents window protocol seed variance noise '
  + 'pruning sparsity wanda magnitude sparsegpt structured heads channels recovered distillation teacher student '
  + 'temperature alpha steps epochs learning rate warmup cosine schedule checkpoint resumed cancelled restarted '
  + 'customer asked ship laptop phone edge device server batch thread count onnxruntime version upgrade regression '
  + 'investigate later note todo check again with more samples agreement kl divergence top token accuracy'
).split(' ');
const RARE = ['zephyrine', 'quokka', 'marzipan', 'obsidian', 'tamarind', 'velour'];

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FilledHome {
  count: number;
  /** Seconds spent writing it. */
  seconds: number;
  /** A tag used by about a tenth of the experiments, and one used by few. */
  commonTag: string;
  rareTag: string;
  /** A word in few experiments' notes. */
  rareWord: string;
}

export function fillHistory(home: string, count: number, seed = 1): FilledHome {
  const random = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  /** Skewed towards the front of the list (a few tags are used a lot). */
  const pickSkewed = <T>(list: readonly T[]): T => list[Math.floor(random() ** 2.5 * list.length)];
  const h = openHistory({ home });
  const started = performance.now();
  const start = Date.parse('2026-01-01T00:00:00.000Z');
  const setCreated = h.db.prepare('UPDATE experiments SET created = ?, finished = ?, starred = ?, pinned = ? WHERE id = ?');
  try {
    h.transaction(() => {
      for (let i = 0; i < count; i++) {
        const model = pick(MODELS);
        const modelPath = `/home/user/models/${model}/model.onnx`;
        const r = random();
        let kind: string;
        let name: string;
        if (r < 0.4) {
          kind = 'quantize';
          const method = pick(['GPTQ', 'RTN', 'INT8 dynamic', 'INT8 static', 'FP16', 'KD-QAT']);
          const bits = method.startsWith('INT8') ? 8 : method === 'FP16' ? 16 : pick([2, 3, 4, 8]);
          name = `${method} ${bits}-bit${method === 'GPTQ' || method === 'RTN' ? ` g${pick([32, 64, 128])}` : ''} · ${model}`;
        } else if (r < 0.6) {
          kind = 'evaluate';
          name = `Evaluate ${model}`;
        } else if (r < 0.75) {
          kind = 'prune';
          name = `${pick(['Wanda', 'Magnitude', 'SparseGPT', 'Structured heads'])} ${pick([25, 50, 60, 70])}% · ${model}`;
        } else if (r < 0.85) {
          kind = 'sensitivity';
          name = `Sensitivity of ${model}`;
        } else if (r < 0.93) {
          kind = 'train';
          name = `Train ${model} ${pick([100, 500, 2000])} steps`;
        } else {
          kind = 'distill';
          name = `Distill ${model} → ${pick([2, 4, 6])} blocks`;
        }
        const tags: string[] = [];
        for (let t = Math.floor(random() * 4); t > 0; t--) tags.push(pickSkewed(TAGS));
        let notes = '';
        if (random() < 0.5) {
          const length = 8 + Math.floor(random() * 60);
          const words: string[] = [];
          for (let w = 0; w < length; w++) words.push(pick(WORDS));
          if (random() < 0.01) words.push(pick(RARE));
          notes = `${words.join(' ')}.`;
        }
        const id = h.createExperiment({
          name, kind, modelPath, modelBytes: 1_000_000 + Math.floor(random() * 2e9), modelSha256: (i % 97).toString(16).padStart(64, '0'),
          recipe: { version: 1, model: { path: modelPath }, steps: [{ type: kind === 'evaluate' ? 'none' : kind, bits: 4 }], evaluation: { perplexity: { window: 256, maxSamples: 400 } } },
          status: 'running', notes, tags,
        });
        const s = random();
        h.finish(id, s < 0.83 ? 'done' : s < 0.91 ? 'failed' : s < 0.97 ? 'cancelled' : 'interrupted', null, 1000 + random() * 600_000);
        const ppl = 4 + random() * 10;
        const metrics: Metric[] = [
          { name: 'perplexity', value: ppl, unit: '', subject: 'original' },
          { name: 'perplexity', value: ppl * (1 + random() * 0.3), unit: '', subject: 'result' },
          { name: 'kl_divergence', value: random() * 0.2, unit: 'nats', subject: 'result' },
          { name: 'bytes_on_disk', value: Math.floor(1e6 + random() * 2e9), unit: 'bytes', subject: 'result' },
          { name: 'bits_per_weight', value: 2 + random() * 14, unit: 'bits', subject: 'result' },
          { name: 'decode_tokens_per_s', value: 5 + random() * 500, unit: 'tokens/s', subject: 'result' },
          { name: 'prefill_ms', value: 1 + random() * 400, unit: 'ms', subject: 'result' },
          { name: 'agreement', value: 0.7 + random() * 0.3, unit: '', subject: 'result' },
        ];
        h.addMetrics(id, metrics);
        h.addArtefacts(id, [
          { kind: 'model', path: `/home/user/.whittle/outputs/${id}/model.onnx`, bytes: Math.floor(random() * 2e9) },
          { kind: 'folder', path: `/home/user/.whittle/outputs/${id}`, bytes: null },
        ]);
        h.appendLog(id, Array.from({ length: 8 }, (_, k) => ({ level: 'info' as const, text: `step ${k + 1} of 8: ${pick(WORDS)} ${pick(WORDS)}` })));
        h.setDetails(id, {
          weights: Array.from({ length: 24 }, (_, k) => ({ name: `model.layers.${k >> 2}.${pick(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up', 'down'])}.weight`, loss: random(), sparsity: random(), bits: pick([4, 8]) })),
        });
        const created = new Date(start + i * 60_000 + Math.floor(random() * 30_000)).toISOString();
        setCreated.run(created, created, random() < 0.05 ? 1 : 0, random() < 0.005 ? 1 : 0, id);
      }
    });
    return { count, seconds: (performance.now() - started) / 1000, commonTag: TAGS[1], rareTag: TAGS[TAGS.length - 2], rareWord: RARE[0] };
  } finally {
    h.close();
  }
}
