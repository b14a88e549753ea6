/**
 * Reads float weights one at a time into reused buffers. Two buffers alternate so the next weight can be
 * read while the current one is being transformed; each grows to the largest weight it has held, so memory
 * stays at about two tensors whatever the model's size, and large reads do not pay for fresh pages every
 * time.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { WhittleError } from '../errors.ts';
import type { TensorProto } from '../onnx/proto-types.ts';

export class WeightReader {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private readonly buffers: ArrayBuffer[] = [new ArrayBuffer(0), new ArrayBuffer(0)];
  private turn = 0;

  /**
   * The tensor's bytes in one of the two buffers (valid until the reader has been asked for two more
   * tensors), or its in-memory bytes copied to an aligned array.
   */
  async read(t: TensorProto): Promise<Uint8Array> {
    const src = t.data;
    if (!src) return new Uint8Array(0);
    if (src.kind === 'bytes') return src.bytes.slice();
    const slot = this.turn;
    this.turn ^= 1;
    if (this.buffers[slot].byteLength < src.length) this.buffers[slot] = new ArrayBuffer(src.length);
    const out = new Uint8Array(this.buffers[slot], 0, src.length);
    const fh = await this.handle(src.path, t);
    let done = 0;
    while (done < src.length) {
      const { bytesRead } = await fh.read(out, done, src.length - done, src.offset + done);
      if (bytesRead === 0) {
        throw new WhittleError('MODEL_PARSE', `The data of tensor '${t.name ?? ''}' is cut short: ${src.path} ends before byte ${src.offset + src.length}.`, { path: src.path });
      }
      done += bytesRead;
    }
    return out;
  }

  /**
   * The items' tensors in order, each decoded by `decode`, the next one read while the caller works on
   * the current. A decoded view into a reader buffer stays valid until the caller asks for the item after
   * the next one.
   */
  async *stream<T, W>(items: readonly T[], tensorOf: (item: T) => TensorProto, decode: (bytes: Uint8Array, item: T) => W | Promise<W>): AsyncGenerator<{ index: number; item: T; value: W }> {
    const load = (i: number): Promise<W> => {
      const p = this.read(tensorOf(items[i])).then((bytes) => decode(bytes, items[i]));
      p.catch(() => undefined); // awaited below; never an unhandled rejection if the caller stops early
      return p;
    };
    let next: Promise<W> | null = items.length > 0 ? load(0) : null;
    try {
      for (let i = 0; i < items.length; i++) {
        const value = await next!;
        next = i + 1 < items.length ? load(i + 1) : null;
        yield { index: i, item: items[i], value };
      }
    } finally {
      await next?.catch(() => undefined);
    }
  }

  private handle(file: string, t: TensorProto): Promise<FileHandle> {
    let h = this.handles.get(file);
    if (!h) {
      h = open(file, 'r').catch((e: NodeJS.ErrnoException) => {
        throw new WhittleError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `The data of tensor '${t.name ?? ''}' cannot be read from ${file}: ${e.message}`, { path: file }, { cause: e });
      });
      this.handles.set(file, h);
    }
    return h;
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map((h) => h.then((fh) => fh.close(), () => undefined)));
    this.buffers[0] = this.buffers[1] = new ArrayBuffer(0);
  }
}
