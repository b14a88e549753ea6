// Types for scripts/chromium.mjs (the Playwright config imports it).
export interface FoundChromium {
  executablePath: string;
  /** Where it came from, for the one line the tests print. */
  source: string;
  /** Variables to add to the browser's environment (LD_LIBRARY_PATH for a provisioned copy). */
  env: Record<string, string> | undefined;
}
export const PROVISIONED_DIR: string;
export function findChromium(env?: NodeJS.ProcessEnv): FoundChromium | null;
export function provisionChromium(log?: (line: string) => void): Promise<FoundChromium | null>;
export function ensureChromium(env?: NodeJS.ProcessEnv, log?: (line: string) => void): Promise<FoundChromium | null>;
export function describeChromium(browser: FoundChromium): string;
