import { Alert, Group, Loader, Paper, Stack, Table, Text } from '@mantine/core';
import type { ErrorShape, PrunePlan, PrunePlanBlock } from '../../preload/contract.ts';
import { formatBytes, formatCount, formatInteger } from '../lib/format.ts';
import { percent } from '../lib/prune-form.ts';

interface Props { plan: PrunePlan | null; loading: boolean; error: ErrorShape | null }

const blockLabel = (b: PrunePlanBlock): string => (b.block === null ? 'outside the blocks' : `block ${b.block}`);

/** The estimate in one line: size before → after, and what the step zeroes or removes. */
export function pruneEstimateLine(plan: PrunePlan): string {
  return `${formatBytes(plan.bytesBefore)} → ${formatBytes(plan.bytesAfter)}. ${plan.note}`;
}

function UnstructuredTable({ plan }: { plan: PrunePlan }) {
  return (
    <Table data-testid="prune-plan-table" verticalSpacing={4} fz="sm">
      <Table.Thead>
        <Table.Tr><Table.Th>Block</Table.Th><Table.Th>Weights</Table.Th><Table.Th>Parameters</Table.Th><Table.Th>Sparsity</Table.Th></Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {plan.blocks.map((b) => (
          <Table.Tr key={String(b.block)} data-testid="prune-plan-row">
            <Table.Td>{blockLabel(b)}</Table.Td>
            <Table.Td>{b.weights}</Table.Td>
            <Table.Td title={`${formatInteger(b.params)} parameters`}>{formatCount(b.params)}</Table.Td>
            <Table.Td>{b.sparsity !== null ? percent(b.sparsity) : <Text span size="sm" c="dimmed">{b.note}</Text>}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function StructuredTable({ plan }: { plan: PrunePlan }) {
  const target = plan.structured!.target;
  const unit = target === 'heads' ? 'Heads removed' : target === 'neurons' ? 'Neurons removed' : 'Removed';
  return (
    <Table data-testid="prune-plan-table" verticalSpacing={4} fz="sm">
      <Table.Thead>
        <Table.Tr><Table.Th>Block</Table.Th><Table.Th>Heads (KV)</Table.Th><Table.Th>Intermediate</Table.Th><Table.Th>{unit}</Table.Th><Table.Th>Parameters removed</Table.Th></Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {plan.blocks.map((b) => (
          <Table.Tr key={String(b.block)} data-testid="prune-plan-row">
            <Table.Td>{blockLabel(b)}</Table.Td>
            <Table.Td>{b.heads ?? '—'} ({b.kvHeads ?? '—'})</Table.Td>
            <Table.Td>{b.intermediate ?? '—'}</Table.Td>
            <Table.Td>{b.kept ? 'kept (keep pattern)' : target === 'layers' ? (b.removed ? 'the whole block' : '—') : b.removed}</Table.Td>
            <Table.Td title={`${formatInteger(b.removedParams ?? 0)} parameters`}>{formatCount(b.removedParams ?? 0)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** The prune step's preview before running: a per-block table and the estimate line (prune.plan). */
export function PrunePlanPreview({ plan, loading, error }: Props) {
  return (
    <Paper withBorder radius="md" p="md" data-testid="prune-plan" aria-busy={loading || undefined}>
      <Stack gap="xs">
        <Group justify="space-between" wrap="nowrap">
          <Text size="xs" c="dimmed" tt="uppercase" fw={600}>Preview</Text>
          {loading && <Loader size="xs" aria-label="Updating the preview" />}
        </Group>
        {!plan && <Text size="sm" c={error ? 'red' : 'dimmed'} data-testid="prune-plan-status">{error ? error.message : 'Reading the model…'}</Text>}
        {plan && (
          <>
            <Text size="sm" data-testid="prune-plan-estimate" data-before={plan.bytesBefore} data-after={plan.bytesAfter}>{pruneEstimateLine(plan)}</Text>
            {plan.nm && !plan.nm.ok && (
              <Alert color="red" variant="light" title={`The pattern ${plan.nm.pattern} does not fit every weight`} data-testid="prune-plan-nm">
                N:M groups run along the input size K, which must be a multiple of M for:{' '}
                {plan.nm.failing.slice(0, 6).map((f) => `${f.name} (K = ${f.k})`).join(', ')}{plan.nm.failing.length > 6 ? ` and ${plan.nm.failing.length - 6} more` : ''}.
                {' '}Keep those weights (keep patterns) or choose another pattern.
              </Alert>
            )}
            {plan.structured ? <StructuredTable plan={plan} /> : <UnstructuredTable plan={plan} />}
            {plan.skipped.length > 0 && (
              <Text size="xs" c="dimmed" data-testid="prune-plan-skipped">
                Left dense: {plan.skipped.slice(0, 4).map((s) => `${s.name} (${s.reason})`).join('; ')}{plan.skipped.length > 4 ? `; ${plan.skipped.length - 4} more` : ''}.
              </Text>
            )}
          </>
        )}
      </Stack>
    </Paper>
  );
}
