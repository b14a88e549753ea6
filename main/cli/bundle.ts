/** `whittle history export <id…> --out FILE [--with-outputs]` and `whittle history import FILE`. */
import path from 'node:path';
import { formatBytes } from '../../preload/units.ts';
import { UsageError, type OptionValues } from './args.ts';
import { EXIT_OK, type Output } from './output.ts';
import { parseIds } from './report.ts';
import { openSession } from './session.ts';

export async function runExport(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const ids = parseIds(positionals);
  if (o.out === undefined) throw new UsageError('whittle history export needs --out FILE: the bundle to write (for example --out runs.whittle).');
  const file = path.resolve(String(o.out));
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    const r = await session.call('history.export', { ids, path: file, withOutputs: o['with-outputs'] === true });
    const outputs = r.outputFiles > 0 ? ` with ${r.outputFiles} output file${r.outputFiles === 1 ? '' : 's'}` : '';
    out.result(r, `Exported ${r.experiments} experiment${r.experiments === 1 ? '' : 's'}${outputs} to ${r.path} (${formatBytes(r.bytes)}).\nImport it elsewhere with \`whittle history import ${path.basename(r.path)}\`.`);
    return EXIT_OK;
  } finally {
    await session.close();
  }
}

export async function runImport(bundle: string, _o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const file = path.resolve(bundle);
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    const r = await session.call('history.import', { path: file });
    const lines = [
      `Imported ${r.experiments} experiment${r.experiments === 1 ? '' : 's'}${r.groups ? ` and ${r.groups} group${r.groups === 1 ? '' : 's'}` : ''} from ${file}.`,
      ...r.ids.map((m) => `  ${m.from} → ${m.to}`),
      ...(r.outputs.length ? ['Output folders:', ...r.outputs.map((p) => `  ${p}`)] : []),
    ];
    out.result(r, lines.join('\n'));
    return EXIT_OK;
  } finally {
    await session.close();
  }
}
