/**
 * Benchmark: importing a Hugging Face Llama folder of about 0.5 B parameters (Qwen2.5-0.5B shapes as a
 * llama: hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864, vocabulary 151,936, tied; random bf16
 * weights in 2 safetensors shards, generated one tensor at a time) against copying the same bytes with cp.
 * Each import runs in a child process that reports its time and peak RSS (VmHWM); cp's peak RSS from
 * /usr/bin/time; every cp is followed by sync inside its timing, as the import ends with fdatasync. Both read
 * the shards from the page cache (cp goes first). `cp of its output` copies the import's own external data
 * file: the disk's speed for the bytes the import writes.
 *
 *   npm run bench hf-import   (env: BENCH_LAYERS=24, BENCH_DIR=<tmp>)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeShardedSafetensors, type TensorToWrite } from '../../main/engine/interop/safetensors-writer.ts';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 24);
const H = 896, I = 4864, NH = 14, NKV = 2, D = 64, V = 151_936;
const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'whittle-bench-hf-import-'));
const MiB = 2 ** 20;

const CHILD = `
import { readFileSync } from 'node:fs';
import { importHuggingFace } from ${JSON.stringify(path.resolve('main/engine/interop/import-hf.ts'))};
const kb = (f) => Number(new RegExp('^' + f + ':\\\\s+(\\\\d+) kB', 'm').exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const [src, out, dtype] = process.argv.slice(1);
const t0 = performance.now();
const r = await importHuggingFace(src, out, { dtype });
console.log(JSON.stringify({ peakKb: kb('VmHWM'), seconds: (performance.now() - t0) / 1000, bytes: r.bytes, parameters: r.parameters }));
`;

/** Random bf16 values of a normal-ish spread (σ ≈ 0.02), from a fixed-seed generator. */
function randomBf16(count: number, seed: number): Uint8Array {
  const out = new Uint16Array(count);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const a = (s >>> 0) / 4294967296;
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const b = (s >>> 0) / 4294967296;
    f[0] = (a + b - 1) * 0.05;
    out[i] = u[0] >>> 16;
  }
  return new Uint8Array(out.buffer);
}

function tensors(): TensorToWrite[] {
  const list: TensorToWrite[] = [];
  let seed = 1;
  const add = (name: string, shape: number[]): void => {
    const s = seed++;
    list.push({ name, dtype: 'BF16', shape, bytes: () => randomBf16(shape.reduce((a, d) => a * d, 1), s * 2654435761) });
  };
  add('model.embed_tokens.weight', [V, H]);
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [H]);
    add(`${p}.self_attn.q_proj.weight`, [NH * D, H]);
    add(`${p}.self_attn.k_proj.weight`, [NKV * D, H]);
    add(`${p}.self_attn.v_proj.weight`, [NKV * D, H]);
    add(`${p}.self_attn.o_proj.weight`, [H, NH * D]);
    add(`${p}.post_attention_layernorm.weight`, [H]);
    add(`${p}.mlp.gate_proj.weight`, [I, H]);
    add(`${p}.mlp.up_proj.weight`, [I, H]);
    add(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  add('model.norm.weight', [H]);
  return list;
}

/** cp with its peak RSS, then sync, timed together (the import ends with fdatasync too). */
function timed(cmd: string, args: string[]): { seconds: number; peakKb: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8' }).stderr;
  execFileSync('sync');
  return { seconds: (performance.now() - t0) / 1000, peakKb: Number(String(r).trim().split('\n').pop()) };
}

try {
  const src = path.join(root, 'hf');
  mkdirSync(src);
  const t0 = performance.now();
  const list = tensors();
  await writeShardedSafetensors(src, list, 2);
  writeFileSync(path.join(src, 'config.json'), JSON.stringify({
    model_type: 'llama', hidden_size: H, intermediate_size: I, num_hidden_layers: LAYERS, num_attention_heads: NH, num_key_value_heads: NKV,
    vocab_size: V, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1_000_000, hidden_act: 'silu', tie_word_embeddings: true, torch_dtype: 'bfloat16',
  }));
  const shards = readdirSync(src).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(src, f));
  const inBytes = shards.reduce((a, f) => a + statSync(f).size, 0);
  const params = list.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  console.log(`${(params / 1e9).toFixed(3)} B parameters (${LAYERS} layers), bf16 in ${shards.length} shards: ${(inBytes / MiB).toFixed(0)} MiB; generated in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${os.cpus().length} CPUs`);

  const copyDir = path.join(root, 'copy');
  mkdirSync(copyDir);
  execFileSync('sync');
  const cp = timed('cp', [...shards, copyDir]);
  console.log(`cp of the shards:        ${cp.seconds.toFixed(1)} s, ${(inBytes / MiB / cp.seconds).toFixed(0)} MiB/s read; peak RSS ${(cp.peakKb / 1024).toFixed(0)} MiB`);
  rmSync(copyDir, { recursive: true, force: true });

  for (const dtype of ['fp16', 'fp32']) {
    const out = path.join(root, `out-${dtype}`);
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', CHILD, src, out, dtype], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { peakKb: number; seconds: number; bytes: number };
    console.log(`whittle import --dtype ${dtype}: ${r.seconds.toFixed(1)} s (${(r.seconds / cp.seconds).toFixed(1)} × cp), ${(inBytes / MiB / r.seconds).toFixed(0)} MiB/s read, writes ${(r.bytes / MiB).toFixed(0)} MiB; peak RSS ${(r.peakKb / 1024).toFixed(0)} MiB (${((r.peakKb * 1024) / inBytes).toFixed(2)} × the shards)`);
    // The same number of bytes written by cp (the import's output copied), for the disk's own write speed.
    const again = path.join(root, 'again.data');
    const cpOut = timed('cp', [path.join(out, 'model.onnx.data'), again]);
    console.log(`  cp of its ${(r.bytes / MiB).toFixed(0)} MiB output:  ${cpOut.seconds.toFixed(1)} s (import = ${(r.seconds / cpOut.seconds).toFixed(1)} × this)`);
    rmSync(again, { force: true });
    rmSync(out, { recursive: true, force: true });
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
