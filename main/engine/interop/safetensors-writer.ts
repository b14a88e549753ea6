/**
 * Writing safetensors files, one tensor at a time: the header (offsets from the declared shapes) first,
 * then each tensor's bytes as its producer hands them over. Sharded output writes
 * model-0000i-of-0000n.safetensors and model.safetensors.index.json, as Transformers' save_pretrained does.
 */
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { writeFully } from '../onnx/tensor-data.ts';
import { DTYPE_BYTES, type SafetensorsDtype } from './safetensors.ts';

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor's little-endian bytes, asked for once, when it is written. */
  bytes: () => Uint8Array | Promise<Uint8Array>;
}

function byteLength(t: TensorToWrite): number {
  return t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
}

/** Writes one safetensors file holding `tensors` in the order given. */
export async function writeSafetensors(file: string, tensors: TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = byteLength(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // data starts 8-byte aligned
  const headBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headBytes.length), true);
  const fh = await open(file, 'w');
  try {
    await writeFully(fh, prefix, 0);
    await writeFully(fh, headBytes, 8);
    let at = 8 + headBytes.length;
    for (const t of tensors) {
      const bytes = await t.bytes();
      if (bytes.length !== byteLength(t)) throw new WhittleError('INTERNAL', `Tensor '${t.name}' has ${bytes.length} bytes, its shape needs ${byteLength(t)}.`);
      await writeFully(fh, bytes, at);
      at += bytes.length;
    }
    return at;
  } finally {
    await fh.close();
  }
}

/** Writes `tensors` into `shards` files of about equal size plus model.safetensors.index.json in `dir`. */
export async function writeShardedSafetensors(dir: string, tensors: TensorToWrite[], shards: number): Promise<string[]> {
  const total = tensors.reduce((a, t) => a + byteLength(t), 0);
  const groups: TensorToWrite[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const t of tensors) {
    const g = Math.min(shards - 1, Math.floor((acc / total) * shards));
    groups[g].push(t);
    acc += byteLength(t);
  }
  const pad = (i: number): string => String(i).padStart(5, '0');
  const names = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(shards)}.safetensors`);
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards; i++) {
    await writeSafetensors(path.join(dir, names[i]), groups[i]);
    for (const t of groups[i]) weightMap[t.name] = names[i];
  }
  await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return names;
}

/** float32 → bfloat16 bits, rounded to nearest even (as torch's .to(torch.bfloat16)). */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) { out[i] = (x >>> 16) | 0x40; continue; } // NaN stays NaN
    out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
