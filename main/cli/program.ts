/**
 * The `whittle` program: parses the command line, runs the command, prints the result or the error and
 * returns the exit status (0 success, 2 invalid input, 1 any other failure). main/cli/index.ts runs it.
 */
import path from 'node:path';
import { appVersion } from '../paths.ts';
import { commandHelp, overviewHelp, parseCommandLine, UsageError } from './args.ts';
import { COMMANDS } from './commands.ts';
import { cliErrorShape, EXIT_INPUT, EXIT_OK, exitCodeFor, Output } from './output.ts';

export async function main(argv: readonly string[], output?: { stdout?: Output['stdout']; stderr?: Output['stderr'] }): Promise<number> {
  // Before parsing, so that a parse error in --json mode is reported as JSON too.
  const json = argv.includes('--json');
  let out = new Output({ json, quiet: argv.includes('--quiet') || argv.includes('-q'), ...output });
  try {
    const { command, group, positionals, options } = parseCommandLine(argv, COMMANDS);
    out = new Output({ json: options.json === true, quiet: options.quiet === true, ...output });
    if (json) {
      // Third-party code must not put anything else on stdout.
      console.log = console.error;
      console.info = console.error;
    }

    if (options.version) {
      out.result({ version: appVersion() }, `whittle ${appVersion()}`);
      return EXIT_OK;
    }
    if (command === null) {
      // No command, or a command group alone (`whittle history`).
      const text = overviewHelp(COMMANDS, group);
      if (options.help) {
        out.result({ help: text }, text);
        return EXIT_OK;
      }
      throw new UsageError(group ? `\`whittle ${group}\` needs a subcommand.` : 'No command given.', text.trimEnd());
    }
    if (options.help) {
      const text = commandHelp(command);
      out.result({ help: text }, text);
      return EXIT_OK;
    }

    const home = options.home === undefined ? undefined : path.resolve(String(options.home));
    // Each command loads its modules when it runs: `--help` and `inspect` need no database or job system.
    switch (command.name) {
      case 'inspect': return await (await import('./inspect.ts')).runInspect(positionals[0], out);
      case 'import': return await (await import('./import.ts')).runImport(positionals[0], options, out);
      case 'export': return await (await import('./export.ts')).runExport(positionals[0], options, out);
      case 'eval': return await (await import('./experiment.ts')).runEval(positionals, options, out, home);
      case 'run': return await (await import('./experiment.ts')).runRecipeCommand(positionals[0], options, out, home);
      case 'quantize': return await (await import('./quantize.ts')).runQuantize(positionals[0], options, out, home);
      case 'prune': return await (await import('./prune.ts')).runPrune(positionals[0], options, out, home);
      case 'train': return await (await import('./train.ts')).runTrain(positionals, options, out, home);
      case 'distill': return await (await import('./distill.ts')).runDistill(positionals, options, out, home);
      case 'history list': return await (await import('./history.ts')).runHistory('list', positionals, options, out, home);
      case 'history show': return await (await import('./history.ts')).runHistory('show', positionals, options, out, home);
      case 'history delete': return await (await import('./history.ts')).runHistory('delete', positionals, options, out, home);
      case 'history compare': return await (await import('./compare.ts')).runCompare(positionals, options, out, home);
      case 'history lineage': return await (await import('./lineage.ts')).runLineage(positionals, out, home);
      case 'history export': return await (await import('./bundle.ts')).runExport(positionals, options, out, home);
      case 'history import': return await (await import('./bundle.ts')).runImport(positionals[0], options, out, home);
      case 'report': return await (await import('./report.ts')).runReport(positionals, options, out, home);
      case 'sweep': return await (await import('./sweep.ts')).runSweep(positionals, options, out, home);
      case 'serve': return await (await import('./serve.ts')).runServe(options, out, home);
      default: throw new UsageError(`Unknown command "${command.name}".`);
    }
  } catch (error) {
    const shape = cliErrorShape(error);
    if (shape.code === 'INTERNAL' && process.env.WHITTLE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    out.error(shape);
    return error instanceof UsageError ? EXIT_INPUT : exitCodeFor(shape);
  }
}
