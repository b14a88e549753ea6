/**
 * Where freshly made tensors (quantized, converted, pruned) wait for the model writer. The first
 * `memoryBudget` bytes stay in memory; beyond that each tensor is appended to a scratch file as soon as it
 * is made and handed to the writer as a file reference. Memory for new tensors is thus bounded by a
 * constant, not by the model, and small models avoid the extra write and read.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { TensorSource } from '../onnx/proto-types.ts';

export const DEFAULT_SPOOL_MEMORY = 128 * 2 ** 20;

export class TensorSpool {
  readonly path: string;
  private readonly memoryBudget: number;
  private fh: FileHandle | null = null;
  private size = 0;
  private inMemory = 0;

  constructor(path: string, memoryBudget = DEFAULT_SPOOL_MEMORY) {
    this.path = path;
    this.memoryBudget = memoryBudget;
  }

  /** Takes ownership of `bytes` (the caller must not modify them) and returns where they are. */
  async append(bytes: Uint8Array): Promise<TensorSource> {
    if (this.inMemory + bytes.length <= this.memoryBudget) {
      this.inMemory += bytes.length;
      return { kind: 'bytes', bytes };
    }
    this.fh ??= await open(this.path, 'w');
    const offset = this.size;
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
    this.size += bytes.length;
    return { kind: 'file', path: this.path, offset, length: bytes.length };
  }

  /** Bytes written to the scratch file so far. */
  get spilledBytes(): number {
    return this.size;
  }

  /** Closes the file; file references stay readable until `remove`. */
  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = null;
  }

  async remove(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }
}
