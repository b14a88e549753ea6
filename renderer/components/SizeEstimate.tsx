import { Group, Loader, Paper, Progress, Stack, Text } from '@mantine/core';
import { IconArrowRight } from '@tabler/icons-react';
import type { ErrorShape, QuantizePlan } from '../../preload/contract.ts';
import { formatBytes, formatInteger } from '../lib/format.ts';
import { changePercent, formatChange, formatRatio } from '../lib/quantize-compare.ts';

interface Props { plan: QuantizePlan | null; loading: boolean; error: ErrorShape | null }

/** The model's size now and the estimated size after quantization, before anything runs. */
export function SizeEstimate({ plan, loading, error }: Props) {
  const share = plan && plan.bytesBefore > 0 ? Math.min(100, (plan.bytesAfter / plan.bytesBefore) * 100) : null;
  return (
    <Paper withBorder radius="md" p="md" data-testid="size-estimate" data-before={plan?.bytesBefore} data-after={plan?.bytesAfter} aria-busy={loading || undefined}>
      <Group justify="space-between" align="flex-start" wrap="nowrap">
        <Stack gap={2}>
          <Text size="xs" c="dimmed" tt="uppercase" fw={600}>Estimated output size</Text>
          {plan ? (
            <Group gap="xs" wrap="nowrap" align="center">
              <Text size="xl" fw={700} c="dimmed" title={`${formatInteger(plan.bytesBefore)} bytes`} data-testid="size-before">{formatBytes(plan.bytesBefore)}</Text>
              <IconArrowRight size={18} aria-label="becomes" />
              <Text size="xl" fw={700} title={`${formatInteger(plan.bytesAfter)} bytes`} data-testid="size-after">{formatBytes(plan.bytesAfter)}</Text>
              <Text size="sm" c="teal" fw={600} data-testid="size-ratio">{formatRatio(plan.bytesBefore, plan.bytesAfter)} ({formatChange(changePercent(plan.bytesBefore, plan.bytesAfter))})</Text>
            </Group>
          ) : (
            <Text size="sm" c={error ? 'red' : 'dimmed'}>{error ? error.message : 'Estimating…'}</Text>
          )}
        </Stack>
        {loading && <Loader size="xs" mt={4} aria-label="Updating the estimate" />}
      </Group>
      {share !== null && (
        <Progress value={share} size="sm" mt="sm" aria-label="Estimated size as a share of the original" />
      )}
      {plan && (
        <Text size="xs" c="dimmed" mt={6}>
          {formatInteger(plan.counts.quantize)} weight{plan.counts.quantize === 1 ? '' : 's'} {plan.method === 'fp16' ? 'to float16' : 'quantized'}, {formatInteger(plan.counts.keep)} kept in full precision,
          {' '}{formatInteger(plan.counts.skip)} skipped. {plan.note ?? 'Estimated from the shapes: model file plus external data, 4 KiB aligned.'}
        </Text>
      )}
    </Paper>
  );
}
