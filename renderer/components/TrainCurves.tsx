import { Group, Paper, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { LineChart } from '@mantine/charts';
import { memo, useDeferredValue, useMemo } from 'react';
import type { CurvePoint } from '../../preload/series.ts';
import { formatDecimal, formatEta } from '../lib/format.ts';
import { chartRows, curveFigures, curveRows, hasParts } from '../lib/train-curve.ts';

function Figure({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <Stack gap={0}>
      <Text size="xs" c="dimmed">{label}</Text>
      <Text size="sm" fw={600} data-testid={testId}>{value}</Text>
    </Stack>
  );
}

const loss = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(4));

/**
 * The training curve: loss per optimizer step with the held-out loss where it was measured, the learning
 * rate (warmup then cosine decay), and the latest step's figures (tokens/s, time left). `live` while the
 * job runs; a finished job's stored curve otherwise.
 */
export const TrainCurves = memo(function TrainCurves({ curve: given, live = false }: { curve: readonly CurvePoint[]; live?: boolean }) {
  // A point per step can arrive many times a second: the figures follow every point; the charts (the costly
  // part) follow when the page has time, so clicks go first and a busy page never freezes the figures.
  const figures = useMemo(() => curveFigures(given), [given]);
  const curve = useDeferredValue(given);
  const rows = useMemo(() => chartRows(curveRows(curve)), [curve]);
  const parts = useMemo(() => hasParts(curve), [curve]);
  return (
    <Paper withBorder radius="md" p="md" data-testid="train-curves" data-points={given.length} data-step={figures?.step ?? 0}>
      <Stack gap="sm">
        <Group justify="space-between" wrap="nowrap">
          <Title order={4}>Training</Title>
          {figures && <Text size="sm" c="dimmed" data-testid="train-step">step {figures.step} / {figures.totalSteps}</Text>}
        </Group>
        {!figures && <Text size="sm" c="dimmed" data-testid="train-waiting">{live ? 'Building the training graph; the first step follows…' : 'No training curve was recorded.'}</Text>}
        {figures && (
          <>
            <SimpleGrid cols={{ base: 2, sm: 5 }} data-testid="train-stats">
              <Figure label="Training loss" value={loss(figures.loss)} testId="train-loss" />
              <Figure label="Held-out loss" value={figures.evalLoss === null ? '—' : `${loss(figures.firstEvalLoss)} → ${loss(figures.evalLoss)}`} testId="train-eval-loss" />
              <Figure label="Learning rate" value={Number.isFinite(figures.lr) ? figures.lr.toExponential(2) : '—'} testId="train-lr" />
              <Figure label="Tokens/s" value={Number.isFinite(figures.tokensPerSecond) ? formatDecimal(figures.tokensPerSecond, 0) : '—'} testId="train-tokens-per-s" />
              <Figure label="Time left" value={live && figures.step < figures.totalSteps ? formatEta(figures.etaSeconds) : 'finished'} testId="train-eta" />
              {figures.agree !== null && <Figure label="Teacher–student agreement" value={`${(100 * figures.agree).toFixed(1)} %`} testId="train-agreement" />}
            </SimpleGrid>
            <SimpleGrid cols={{ base: 1, md: 2 }}>
              <Stack gap={4}>
                <Text size="sm" fw={600}>Loss</Text>
                <LineChart h={220} data={rows} dataKey="step" withDots={false} connectNulls curveType="linear" withLegend legendProps={{ verticalAlign: 'bottom' }}
                  series={[{ name: 'loss', label: 'training', color: 'blue.6' }, { name: 'evalLoss', label: 'held-out', color: 'orange.6' }]}
                  lineProps={{ isAnimationActive: false }} valueFormatter={(v) => v.toFixed(3)} yAxisProps={{ width: 48, domain: ['auto', 'auto'] }} xAxisLabel="step"
                  data-testid="train-loss-chart" />
              </Stack>
              <Stack gap={4}>
                <Text size="sm" fw={600}>Learning rate</Text>
                <LineChart h={220} data={rows} dataKey="step" withDots={false} curveType="linear" series={[{ name: 'lr', label: 'learning rate', color: 'teal.6' }]}
                  lineProps={{ isAnimationActive: false }} valueFormatter={(v) => v.toExponential(1)} yAxisProps={{ width: 56 }} xAxisLabel="step" data-testid="train-lr-chart" />
              </Stack>
              {parts && (
                <Stack gap={4}>
                  <Text size="sm" fw={600}>Distillation: KL to the teacher and cross-entropy</Text>
                  <LineChart h={220} data={rows} dataKey="step" withDots={false} connectNulls curveType="linear" withLegend legendProps={{ verticalAlign: 'bottom' }}
                    series={[{ name: 'kl', label: 'KL (× T²)', color: 'grape.6' }, { name: 'ce', label: 'cross-entropy', color: 'blue.6' }]}
                    lineProps={{ isAnimationActive: false }} valueFormatter={(v) => v.toFixed(3)} yAxisProps={{ width: 48, domain: ['auto', 'auto'] }} xAxisLabel="step"
                    data-testid="train-parts-chart" />
                </Stack>
              )}
              {parts && (
                <Stack gap={4}>
                  <Text size="sm" fw={600}>Teacher–student agreement (top-1)</Text>
                  <LineChart h={220} data={rows} dataKey="step" withDots={false} connectNulls curveType="linear" series={[{ name: 'agree', label: 'agreement', color: 'green.6' }]}
                    lineProps={{ isAnimationActive: false }} valueFormatter={(v) => `${(100 * v).toFixed(1)} %`} yAxisProps={{ width: 56, domain: [0, 1] }} xAxisLabel="step"
                    data-testid="train-agreement-chart" />
                </Stack>
              )}
            </SimpleGrid>
          </>
        )}
      </Stack>
    </Paper>
  );
});
