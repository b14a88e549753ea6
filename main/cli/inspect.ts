/** `whittle inspect <model>`: what the model is, without starting a job or opening the history. */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ModelInspection } from '../../preload/contract.ts';
import { WhittleError } from '../engine/errors.ts';
import { inspectModel } from '../engine/model/inspect.ts';
import { architectureLines } from '../engine/rewrite/architecture-summary.ts';
import { formatBytes, formatCount, renderFacts, renderTable } from './format.ts';
import { EXIT_OK, type Output } from './output.ts';

function shapeText(shape: ModelInspection['inputs'][number]['shape']): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

export function inspectionText(m: ModelInspection): string {
  const facts: [string, string][] = [
    ['model', m.path],
    ['size on disk', `${formatBytes(m.bytesOnDisk)}${m.externalDataFiles.length ? ` (with ${m.externalDataFiles.length} external data file${m.externalDataFiles.length > 1 ? 's' : ''})` : ''}`],
    ['kind', m.kind],
    ['parameters', `${formatCount(m.parameters)} (${m.parameters.toLocaleString('en-US')})`],
    ['weights by dtype', Object.entries(m.bytesByDtype).map(([d, b]) => `${d} ${formatBytes(b)}`).join(', ') || '—'],
    ['IR version', String(m.irVersion)],
    ['opsets', m.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ')],
    ['producer', m.producer || '—'],
  ];
  if (m.decoder) {
    const d = m.decoder;
    const parts = [
      d.layers !== undefined ? `${d.layers} layers` : null,
      d.kvHeads !== undefined ? `${d.kvHeads} KV heads` : null,
      d.headSize !== undefined ? `head size ${d.headSize}` : null,
      d.vocabSize !== undefined ? `vocabulary ${d.vocabSize}` : null,
    ].filter(Boolean);
    if (parts.length) facts.push(['decoder', parts.join(', ')]);
  }
  for (const line of m.unsupported ?? []) facts.push(['not supported', line]);
  if (m.architecture) facts.push(...architectureLines(m.architecture));
  const quantizable = m.quantizable.filter((q) => !q.skipReason).length;
  facts.push(['quantizable weights', `${quantizable} of ${m.quantizable.length}`]);

  const io = [['', 'name', 'dtype', 'shape'], ...m.inputs.map((t) => ['in', t.name, t.dtype, shapeText(t.shape)]), ...m.outputs.map((t) => ['out', t.name, t.dtype, shapeText(t.shape)])];
  const ops = Object.entries(m.opHistogram).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const opsText = ops.map(([op, n]) => `${op} ×${n}`).join(', ');
  return `${renderFacts(facts)}\n${renderTable(io, { header: true })}\noperators: ${opsText}\n`;
}

export async function runInspect(modelArg: string, out: Output): Promise<number> {
  const file = path.resolve(modelArg);
  if (!existsSync(file)) throw new WhittleError('NOT_FOUND', `The model file ${file} does not exist.`, { path: file });
  if (statSync(file).isDirectory()) throw new WhittleError('INVALID_INPUT', `${file} is a folder; give the .onnx file inside it.`, { path: file });
  const inspection = await inspectModel(file);
  out.result(inspection, inspectionText(inspection));
  return EXIT_OK;
}
