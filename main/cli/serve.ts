/**
 * `whittle serve`: the app behind the serve-mode HTTP/WebSocket server on 127.0.0.1. Prints one line
 * with the URL (its fragment carries the token) and runs until SIGINT or SIGTERM, then closes the server
 * and the app (running jobs are cancelled by the job system) and exits 0.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { appPaths } from '../paths.ts';
import { startServer } from '../server/serve.ts';
import type { OptionValues } from './args.ts';
import { EXIT_OK, type Output } from './output.ts';
import { cliLogger, openSession } from './session.ts';
import { onStopSignals, type StopSignals } from './signals.ts';

function openInBrowser(url: string, out: Output): void {
  const [command, args] = process.platform === 'darwin' ? ['open', [url]]
    : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]]
      : ['xdg-open', [url]];
  try {
    const child = spawn(command, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => out.warn(`could not open a browser (${command}); open the URL yourself.`));
    child.unref();
  } catch {
    out.warn('could not open a browser; open the URL yourself.');
  }
}

export async function runServe(o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const session = await openSession({ home, transport: 'serve', needsEngine: true, out });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({
      app: session.app,
      port: o.port === undefined ? 0 : Number(o.port),
      host: '127.0.0.1',
      roots: Array.isArray(o.root) ? o.root : undefined,
      logger: cliLogger(out),
    });
  } catch (error) {
    await session.close();
    throw error;
  }
  let signals: StopSignals | undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    // A second signal while closing quits at once.
    signals = onStopSignals(resolve, () => process.exit(1));
  });
  out.result({ url: server.url, port: server.port, token: server.token }, `Whittle is serving at ${server.url}`);
  if (!existsSync(path.join(appPaths.renderer(), 'index.html'))) {
    out.warn('the interface has not been built, so the page only says so; run `npm run build` and start again.');
  }
  out.info(`Calls may name files in: ${server.roots.join(', ')}`);
  out.info('Press Ctrl-C to stop.');
  if (o.open) openInBrowser(server.url, out);

  const signal = await stopped;
  out.info(`${signal === 'SIGINT' ? 'Ctrl-C' : signal}: stopping…`);
  try {
    await server.close();
    await session.close();
  } finally {
    signals?.dispose();
  }
  return EXIT_OK;
}
