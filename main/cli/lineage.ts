/** `whittle history lineage <id>`: the tree of a model, from its original, with each step's headline. */
import type { LineageNode, LineageTree } from '../../preload/contract.ts';
import { formatMetric, metricLabel } from './format.ts';
import { parseId } from './history.ts';
import { EXIT_OK, type Output } from './output.ts';
import { openSession } from './session.ts';

function nodeLine(n: LineageNode, current: number): string {
  const id = n.id !== null ? `#${n.id} ` : '';
  const what = n.kind === 'model' ? `${n.name} (original)` : `${id}${n.kind} · ${n.name}${n.status && n.status !== 'done' ? ` [${n.status}]` : ''}`;
  const headline = n.headline.map((m) => `${metricLabel(m.name)} ${formatMetric(m)}`).join(' · ');
  const here = n.kind !== 'model' && n.id === current ? '  ◀' : '';
  return `${what}${headline ? `  ${headline}` : ''}${here}`;
}

/** The tree as indented lines (├─ └─), the experiment asked about marked ◀. */
export function lineageText(tree: LineageTree): string {
  const lines = [nodeLine(tree.root, tree.current)];
  const walk = (children: readonly LineageNode[], prefix: string): void => {
    children.forEach((child, i) => {
      const last = i === children.length - 1;
      lines.push(`${prefix}${last ? '└─ ' : '├─ '}${nodeLine(child, tree.current)}`);
      walk(child.children, `${prefix}${last ? '   ' : '│  '}`);
    });
  };
  walk(tree.root.children, '');
  if (tree.truncated > 0) lines.push(`(${tree.truncated} more experiments of this model are not shown)`);
  return `${lines.join('\n')}\n`;
}

export async function runLineage(positionals: string[], out: Output, home: string | undefined): Promise<number> {
  const id = parseId(positionals[0]);
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    const tree = await session.call('history.lineage', { id });
    out.result(tree, lineageText(tree));
    return EXIT_OK;
  } finally {
    await session.close();
  }
}
