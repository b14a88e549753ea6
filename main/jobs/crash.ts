/** What to tell the user when an engine process ends without reporting a result or an error. */
import type { ErrorShape } from '../../preload/contract.ts';

const OUT_OF_MEMORY = /heap out of memory|out of memory|std::bad_alloc|cannot allocate memory|ENOMEM|Allocation failed/i;

/** The last `max` characters of what the engine printed (for details and OOM detection). */
export class OutputTail {
  private text = '';
  private readonly max: number;
  constructor(max = 4000) {
    this.max = max;
  }
  append(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.max);
  }
  toString(): string {
    return this.text;
  }
}

export function unexpectedExitError(code: number | null, signal: string | null, stderrTail: string): ErrorShape {
  const how = signal ? `signal ${signal}` : code === null ? 'no exit status' : `exit code ${code}`;
  const details: Record<string, unknown> = { exitCode: code, signal };
  const tail = stderrTail.trim();
  if (tail) details.stderr = tail;
  if (OUT_OF_MEMORY.test(tail)) {
    return {
      code: 'OUT_OF_MEMORY',
      message: `The engine process stopped unexpectedly (${how}): it ran out of memory. Close other programs, or try a smaller model, fewer samples or a shorter window. Whittle itself is fine; other jobs go on.`,
      details,
    };
  }
  const hint = signal === 'SIGKILL'
    ? ' Something ended it from outside — often the system running out of memory.'
    : signal === 'SIGSEGV' || signal === 'SIGBUS' || signal === 'SIGILL' || signal === 'SIGABRT'
      ? ' A native library (onnxruntime or Whittle\'s kernels) crashed.'
      : '';
  return {
    code: 'INTERNAL',
    message: `The engine process stopped unexpectedly (${how}).${hint} The job was lost; Whittle itself is fine and other jobs go on.`,
    details,
  };
}
