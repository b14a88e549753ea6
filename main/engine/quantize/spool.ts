/**
 * An append-only scratch file for freshly quantized tensors. Each tensor is written as soon as it is made
 * and handed to the model writer as a file reference, so the bytes of all quantized weights are never in
 * memory together (peak memory follows the largest tensor, not the model).
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { TensorSource } from '../onnx/proto-types.ts';

export class TensorSpool {
  readonly path: string;
  private fh: FileHandle | null = null;
  private size = 0;

  constructor(path: string) {
    this.path = path;
  }

  /** Appends `bytes` and returns where they are. Small payloads stay in memory. */
  async append(bytes: Uint8Array, inlineBelow = 4096): Promise<TensorSource> {
    if (bytes.length < inlineBelow) return { kind: 'bytes', bytes: bytes.slice() };
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

  /** Flushes and closes the file; references stay readable until `remove`. */
  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = null;
  }

  async remove(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }
}
