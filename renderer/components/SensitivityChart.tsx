import { Badge, Button, Group, NumberInput, ScrollArea, Stack, Table, Text, Tooltip } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { IconArrowBigUpLines, IconFeather } from '@tabler/icons-react';
import { useMemo, useState } from 'react';
import { formatInteger } from '../lib/format.ts';
import { shortWeightName, type SensitivityRow } from '../lib/quantize-form.ts';

export type RowState = '8-bit' | 'float' | null;

interface Props {
  rows: readonly SensitivityRow[];
  baseline: { kl: number } | null;
  /** The bits every candidate was measured at. */
  bits: number | null;
  /** What the current step does with a candidate (to mark rows and bars); absent on the results page. */
  stateOf?: (row: SensitivityRow) => RowState;
  /** Writes the top k into the step; absent on the results page (read-only). */
  onApply?: (k: number, mode: '8bit' | 'float') => void;
  /** Why the 8-bit button is off (e.g. the step is already 8-bit). */
  no8bitReason?: string | null;
  /** k, when the caller keeps it (so that it survives leaving the step); else the chart keeps its own. */
  k?: number | string;
  onK?: (k: number | string) => void;
}

/** About a tenth of the candidates, at least one. */
export const defaultTopK = (candidates: number): number => Math.max(1, Math.min(candidates, Math.round(candidates / 10)));

const formatKl = (v: number): string => (v === 0 ? '0' : v.toExponential(2));

/**
 * The per-layer sensitivity ranking: horizontal bars of KL per weight, most sensitive first, the rows
 * the step raises marked, a table of the same ranking, and "keep the top k" buttons.
 */
export function SensitivityChart({ rows, baseline, bits, stateOf, onApply, no8bitReason, k: givenK, onK }: Props) {
  const [ownK, setOwnK] = useState<number | string>(() => defaultTopK(rows.length));
  const k = givenK ?? ownK;
  const setK = onK ?? setOwnK;
  const kNumber = typeof k === 'number' ? k : Number(k);
  const validK = Number.isInteger(kNumber) && kNumber >= 1 && kNumber <= rows.length;
  const data = useMemo(() => rows.map((r) => {
    const state = stateOf?.(r) ?? null;
    return { label: shortWeightName(r.name), name: r.name, raised: state ? r.kl : 0, quantized: state ? 0 : r.kl };
  }), [rows, stateOf]);
  const sumKl = rows.reduce((a, r) => a + r.kl, 0);
  const topShare = validK && sumKl > 0 ? rows.slice(0, kNumber).reduce((a, r) => a + r.kl, 0) / sumKl : null;
  const height = Math.max(160, rows.length * 22 + 60);

  return (
    <Stack gap="md" data-testid="sensitivity-chart" data-rows={rows.length}>
      <Text size="sm" c="dimmed">
        Mean KL(original ‖ model with only this weight quantized{bits ? ` to ${bits} bits` : ''}) per token, most sensitive first.
        {baseline ? ` With every weight quantized: ${formatKl(baseline.kl)} nats/token.` : ''}
        {' '}Sums of single-weight KLs only approximate the joint effect.
      </Text>
      <BarChart h={height} data={data} dataKey="label" orientation="vertical" type="stacked"
        series={[
          { name: 'quantized', label: `Quantized${bits ? ` at ${bits}-bit` : ''}`, color: 'blue.6' },
          ...(stateOf ? [{ name: 'raised', label: 'Raised (8-bit or float)', color: 'orange.6' }] : []),
        ]}
        withLegend={Boolean(stateOf)} legendProps={{ verticalAlign: 'top', height: 36 }} valueFormatter={formatKl} gridAxis="x" withXAxis
        xAxisLabel="KL, nats per token" yAxisProps={{ width: 210, interval: 0, tick: { fontSize: 11 } }} barProps={{ radius: 2 }} maxBarWidth={14}
        tooltipAnimationDuration={0} />
      {onApply && (
        <Group gap="sm" align="flex-end" wrap="wrap">
          <NumberInput label="Top k" value={k} onChange={setK} min={1} max={rows.length} allowDecimal={false} w={110} data-testid="keep-top-k"
            error={validK ? undefined : `1 to ${rows.length}`} />
          <Tooltip label={no8bitReason ?? ''} disabled={!no8bitReason}>
            <Button variant="light" color="orange" leftSection={<IconArrowBigUpLines size={16} />} disabled={!validK || Boolean(no8bitReason)}
              onClick={() => onApply(kNumber, '8bit')} data-testid="keep-top-8bit">Keep the top {validK ? kNumber : 'k'} at 8-bit</Button>
          </Tooltip>
          <Button variant="light" leftSection={<IconFeather size={16} />} disabled={!validK} onClick={() => onApply(kNumber, 'float')} data-testid="keep-top-float">
            Keep the top {validK ? kNumber : 'k'} in float
          </Button>
          {topShare !== null && (
            <Text size="xs" c="dimmed" pb={8}>The top {kNumber} carry {(topShare * 100).toFixed(0)} % of the summed KL.</Text>
          )}
        </Group>
      )}
      <ScrollArea.Autosize mah={320} type="auto" offsetScrollbars="y">
        <Table verticalSpacing={3} stickyHeader data-testid="sensitivity-table">
          <Table.Thead>
            <Table.Tr><Table.Th w={40}>#</Table.Th><Table.Th>Weight</Table.Th><Table.Th ta="right">KL</Table.Th><Table.Th ta="right">Parameters</Table.Th>{stateOf && <Table.Th>Step</Table.Th>}</Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((r, i) => {
              const state = stateOf?.(r) ?? null;
              return (
                <Table.Tr key={r.name} data-testid="sensitivity-row" data-name={r.name} data-kl={r.kl} data-state={state ?? undefined}>
                  <Table.Td><Text size="xs" c="dimmed">{i + 1}</Text></Table.Td>
                  <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{r.name}</Text></Table.Td>
                  <Table.Td ta="right"><Text size="xs">{formatKl(r.kl)}</Text></Table.Td>
                  <Table.Td ta="right"><Text size="xs">{formatInteger(r.params)}</Text></Table.Td>
                  {stateOf && <Table.Td>{state ? <Badge size="xs" variant="light" color="orange">{state}</Badge> : <Text size="xs" c="dimmed">{bits ? `${bits}-bit` : '—'}</Text>}</Table.Td>}
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      </ScrollArea.Autosize>
    </Stack>
  );
}
