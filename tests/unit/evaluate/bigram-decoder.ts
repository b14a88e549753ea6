/**
 * A real ONNX file for the no-cache decoder layout, written byte by byte: a bigram language model
 *   logits[b, t, :] = table[input_ids[b, t], :]     (one Gather; table [V, V] float32)
 * with attention_mask and position_ids declared as inputs (unused by the graph, but fed like a real one's).
 * Its perplexity has a closed form, so the evaluation code can be checked against plain arithmetic.
 */
import { writeFileSync } from 'node:fs';

function varint(out: number[], v: number): void {
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
}
function tag(out: number[], field: number, wire: number): void { varint(out, field * 8 + wire); }
function bytesField(out: number[], field: number, bytes: ArrayLike<number>): void {
  tag(out, field, 2); varint(out, bytes.length); for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
}
function stringField(out: number[], field: number, s: string): void { bytesField(out, field, new TextEncoder().encode(s)); }
function varintField(out: number[], field: number, v: number): void { tag(out, field, 0); varint(out, v); }
function message(build: (out: number[]) => void): number[] { const out: number[] = []; build(out); return out; }

const FLOAT = 1;
const INT64 = 7;

function valueInfo(name: string, elemType: number, dims: (number | string)[]): number[] {
  const shape = message((s) => {
    for (const d of dims) bytesField(s, 1, message((dim) => (typeof d === 'number' ? varintField(dim, 1, d) : stringField(dim, 2, d))));
  });
  const tensorType = message((t) => { varintField(t, 1, elemType); bytesField(t, 2, shape); });
  return message((v) => { stringField(v, 1, name); bytesField(v, 2, message((ty) => bytesField(ty, 1, tensorType))); });
}

/** Writes the bigram decoder for `table` ([vocab, vocab] row-major) to `file`. */
export function writeBigramDecoder(file: string, table: Float32Array, vocab: number): void {
  const node = message((n) => { stringField(n, 1, 'table'); stringField(n, 1, 'input_ids'); stringField(n, 2, 'logits'); stringField(n, 3, 'lookup'); stringField(n, 4, 'Gather'); });
  const initializer = message((t) => {
    varintField(t, 1, vocab); varintField(t, 1, vocab); varintField(t, 2, FLOAT); stringField(t, 8, 'table');
    bytesField(t, 9, new Uint8Array(table.buffer, table.byteOffset, table.byteLength));
  });
  const graph = message((g) => {
    bytesField(g, 1, node);
    stringField(g, 2, 'bigram');
    bytesField(g, 5, initializer);
    bytesField(g, 11, valueInfo('input_ids', INT64, ['batch_size', 'sequence_length']));
    bytesField(g, 11, valueInfo('attention_mask', INT64, ['batch_size', 'total_sequence_length']));
    bytesField(g, 11, valueInfo('position_ids', INT64, ['batch_size', 'sequence_length']));
    bytesField(g, 12, valueInfo('logits', FLOAT, ['batch_size', 'sequence_length', vocab]));
  });
  const model = message((m) => {
    varintField(m, 1, 8);
    stringField(m, 2, 'whittle-tests');
    bytesField(m, 7, graph);
    bytesField(m, 8, message((o) => { stringField(o, 1, ''); varintField(o, 2, 17); }));
  });
  writeFileSync(file, Uint8Array.from(model));
}

/**
 * A graph-only model (never run) with one 4-bit MatMulNBits weight: B uint8 [N, K/32, 16], fp32 scales
 * [N·K/32], no zero points; and an int64 shape constant. For counting parameters and bits per weight.
 */
export function writeMatMulNBitsModel(file: string, n: number, k: number): void {
  const blocks = k / 32;
  const intAttr = (name: string, v: number) => message((a) => { stringField(a, 1, name); varintField(a, 20, 2); varintField(a, 3, v); });
  const node = message((x) => {
    for (const i of ['A', 'B', 'scales']) stringField(x, 1, i);
    stringField(x, 2, 'Y'); stringField(x, 3, 'mm'); stringField(x, 4, 'MatMulNBits'); stringField(x, 7, 'com.microsoft');
    for (const [name, v] of [['K', k], ['N', n], ['bits', 4], ['block_size', 32]] as const) bytesField(x, 5, intAttr(name, v));
  });
  const tensor = (name: string, dtype: number, dims: number[], bytes: number) => message((t) => {
    for (const d of dims) varintField(t, 1, d);
    varintField(t, 2, dtype); stringField(t, 8, name); bytesField(t, 9, new Uint8Array(bytes));
  });
  const graph = message((g) => {
    bytesField(g, 1, node);
    stringField(g, 2, 'q4');
    bytesField(g, 5, tensor('B', 2 /* UINT8 */, [n, blocks, 16], n * blocks * 16));
    bytesField(g, 5, tensor('scales', FLOAT, [n * blocks], n * blocks * 4));
    bytesField(g, 5, tensor('shape', INT64, [2], 16));
    bytesField(g, 11, valueInfo('A', FLOAT, ['m', k]));
    bytesField(g, 12, valueInfo('Y', FLOAT, ['m', n]));
  });
  const model = message((m) => {
    varintField(m, 1, 8);
    bytesField(m, 7, graph);
    bytesField(m, 8, message((o) => { stringField(o, 1, ''); varintField(o, 2, 17); }));
    bytesField(m, 8, message((o) => { stringField(o, 1, 'com.microsoft'); varintField(o, 2, 1); }));
  });
  writeFileSync(file, Uint8Array.from(model));
}
