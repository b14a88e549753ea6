/**
 * Ctrl-C and SIGTERM for long-running commands: the first signal asks for a clean stop, a later one
 * quits at once. Signals that arrive together count as one: a terminal's Ctrl-C reaches the CLI
 * directly and again through `npm run` (and scripts/with-node.mjs), which forward it.
 */

/** Two signals closer together than this are one key press delivered twice. */
export const SAME_PRESS_MS = 400;

export interface StopSignals {
  /** Whether a first signal has arrived. */
  readonly requested: boolean;
  dispose(): void;
}

export function onStopSignals(first: (signal: NodeJS.Signals) => void, again: (signal: NodeJS.Signals) => void): StopSignals {
  let firstAt = 0;
  let requested = false;
  const handler = (signal: NodeJS.Signals): void => {
    const now = Date.now();
    if (!requested) {
      requested = true;
      firstAt = now;
      first(signal);
    } else if (now - firstAt >= SAME_PRESS_MS) {
      again(signal);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get requested() { return requested; },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
