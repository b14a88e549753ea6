/**
 * `whittle`: the command line. Bundled to out/cli.cjs (bin/whittle.js starts it with a suitable Node);
 * Node ≥ 23.6 also runs this file directly from the sources.
 *
 *   whittle inspect <model>
 *   whittle eval <model> --tokenizer FILE --text FILE [...]  |  whittle eval --recipe FILE
 *   whittle run <recipe.json>
 *   whittle quantize <model> --bits 4 --block-size 32 [--eval-text FILE] [...]
 *   whittle history list|show|delete
 *   whittle serve [--port N] [--open]
 *
 * Exit status: 0 success, 2 invalid input, 1 any other failure.
 */
import { main } from './program.ts';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    process.stderr.write(`whittle: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
