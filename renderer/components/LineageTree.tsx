/**
 * The lineage of an experiment (history.lineage): the original model at the top, what was made from it
 * below, recursively; the experiment on screen highlighted, every other node a link to its page.
 */
import { Anchor, Badge, Group, Skeleton, Text } from '@mantine/core';
import type { LineageNode, LineageTree as Tree } from '../../preload/contract.ts';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { formatMetricValue, metricName } from '../lib/lineage.ts';
import { href } from '../lib/route.ts';

function NodeLine({ node, current }: { node: LineageNode; current: number }) {
  const here = node.kind !== 'model' && node.id === current;
  const label = node.kind === 'model' ? `${node.name} (original)` : node.name;
  const headline = node.headline.map((m) => `${metricName(m.name)} ${formatMetricValue(m)}`).join(' · ');
  return (
    <Group gap={6} wrap="nowrap" className={here ? 'lineage-node lineage-current' : 'lineage-node'} data-testid={here ? 'lineage-current' : 'lineage-node'}
      data-kind={node.kind} data-id={node.id ?? ''}>
      {node.kind !== 'model' && <Badge size="xs" variant="light">{node.kind}</Badge>}
      {here || node.id === null
        ? <Text size="sm" fw={here ? 700 : 500} className="wrap-anywhere">{label}</Text>
        : <Anchor href={href.historyDetail(node.id)} size="sm" className="wrap-anywhere">{node.kind === 'model' ? label : `#${node.id} ${label}`}</Anchor>}
      {node.status && node.status !== 'done' && <Text size="xs" c="dimmed">({node.status})</Text>}
      {headline && <Text size="xs" c="dimmed" style={{ whiteSpace: 'nowrap' }}>{headline}</Text>}
    </Group>
  );
}

function Branch({ nodes, current }: { nodes: readonly LineageNode[]; current: number }) {
  if (nodes.length === 0) return null;
  return (
    <ul className="lineage-list">
      {nodes.map((n) => (
        <li key={n.id ?? `model-${n.name}`}>
          <NodeLine node={n} current={current} />
          <Branch nodes={n.children} current={current} />
        </li>
      ))}
    </ul>
  );
}

export function LineageView({ tree }: { tree: Tree }) {
  return (
    <div className="lineage" data-testid="lineage-tree">
      <NodeLine node={tree.root} current={tree.current} />
      <Branch nodes={tree.root.children} current={tree.current} />
      {tree.truncated > 0 && <Text size="xs" c="dimmed" mt={4}>{tree.truncated} more experiments of this model are not shown.</Text>}
    </div>
  );
}

/** Loads and shows the tree of experiment `id`, again whenever the history changes. */
export function LineageTree({ id }: { id: number }) {
  const { data, error, loading, reload } = useCall('history.lineage', { id });
  useEvent('history.changed', () => reload({ quiet: true }));
  if (error) return <ErrorAlert error={error} />;
  if (loading && !data) return <Skeleton h={60} />;
  if (!data) return null;
  return <LineageView tree={data} />;
}
