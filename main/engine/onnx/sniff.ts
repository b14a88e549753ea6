/**
 * Recognising a file by its first bytes (as Netron does), so a wrong file gets a message that says what it
 * is instead of a protobuf error. Returns null when the bytes may be an ONNX protobuf.
 */

export interface Recognised {
  /** What the file is, for `details.format`. */
  format: string;
  /** The rest of the sentence after "<file> ". */
  message: string;
}

/** The file-type bits of a stat result (fs.Stats or fs.promises' stat). */
export interface FileKindBits {
  isFile(): boolean; isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean;
}

/**
 * What a path is when it is neither a regular file nor a folder ("a named pipe", "a device"), else null.
 * Reading a named pipe or a device blocks until someone writes to it, so such paths are refused before
 * they are opened.
 */
export function specialFileKind(st: FileKindBits): string | null {
  if (st.isFile() || st.isDirectory()) return null;
  if (st.isFIFO()) return 'a named pipe';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The sentence for a path that is `kind` (from specialFileKind). */
export function notAFileMessage(label: string, kind: string): string {
  return `${label} is ${kind.startsWith('a ') ? kind : 'a special file'}, not a file. Choose the file itself.`;
}

const ascii = (b: Uint8Array, from: number, len: number): string => String.fromCharCode(...b.subarray(from, from + len));

function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  // Valid UTF-8 (a multi-byte character cut at the end of the sample is allowed) without control bytes
  // other than tab, newline, carriage return and form feed.
  for (let i = 0; i < head.length; i++) {
    const b = head[i];
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) return false;
    if (b === 0x7f) return false;
  }
  let cut = head.length;
  // Drop a trailing incomplete UTF-8 sequence.
  for (let back = 1; back <= 3 && cut - back >= 0; back++) {
    const b = head[cut - back];
    if ((b & 0xc0) === 0x80) continue;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      if (need > back) cut -= back;
    }
    break;
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, cut));
    return true;
  } catch {
    return false;
  }
}

/** `head`: the first bytes of the file (up to 4 KiB); `size`: the whole file's size. */
export function recogniseFile(head: Uint8Array, size: number): Recognised | null {
  if (size === 0) return { format: 'empty', message: 'is empty (0 bytes), not an ONNX model. Copy or export the model again.' };
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05) && (head[3] === 0x04 || head[3] === 0x06)) {
    const text = ascii(head, 0, head.length);
    if (text.includes('data.pkl') || text.includes('/version') || text.includes('.data/')) {
      return { format: 'pytorch', message: 'is not an ONNX model: it is a PyTorch checkpoint (a ZIP archive with pickled weights). Export it to ONNX first, for example with torch.onnx.export or optimum-cli export onnx.' };
    }
    return { format: 'zip', message: 'is not an ONNX model: it is a ZIP archive. Unpack it and open the .onnx file inside.' };
  }
  if (head.length >= 4 && ascii(head, 0, 4) === 'GGUF') {
    return { format: 'gguf', message: 'is not an ONNX model: it is a GGUF file (the llama.cpp format). Whittle needs an ONNX export of the model.' };
  }
  if (head.length >= 9 && size >= 10) {
    const headerLen = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
    if (headerLen > 1 && 8 + headerLen <= size && head[8] === 0x7b /* { */) {
      return { format: 'safetensors', message: 'is not an ONNX model: it is a safetensors weights file. Export the model to ONNX first, for example with optimum-cli export onnx.' };
    }
  }
  if (head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) {
    return { format: 'pickle', message: 'is not an ONNX model: it is a Python pickle (for example an old PyTorch checkpoint). Export it to ONNX first.' };
  }
  if (head.length >= 8 && ascii(head, 4, 4) === 'ORTM') {
    return { format: 'ort', message: 'is not an ONNX model: it is in ONNX Runtime\'s .ort format. Open the original .onnx file instead.' };
  }
  if (head.length >= 8 && ascii(head, 4, 4) === 'TFL3') {
    return { format: 'tflite', message: 'is not an ONNX model: it is a TensorFlow Lite model.' };
  }
  if (head.length >= 8 && head[0] === 0x89 && ascii(head, 1, 3) === 'HDF') {
    return { format: 'hdf5', message: 'is not an ONNX model: it is an HDF5 file (for example a Keras model).' };
  }
  if (looksLikeText(head)) {
    const text = new TextDecoder().decode(head).trimStart();
    if (text.startsWith('version https://git-lfs')) {
      return { format: 'git-lfs-pointer', message: 'is not an ONNX model: it is a Git LFS pointer, not the model\'s bytes. Fetch the real file (git lfs pull) and open it again.' };
    }
    if (/^<(!doctype html|html|\?xml)/i.test(text)) {
      return { format: 'html', message: 'is not an ONNX model: it looks like an HTML page (perhaps a download that failed).' };
    }
    if (text.startsWith('{') || text.startsWith('[')) {
      return { format: 'json', message: 'is not an ONNX model: it looks like a JSON file.' };
    }
    return { format: 'text', message: 'is not an ONNX model: it looks like a text file.' };
  }
  return null;
}
