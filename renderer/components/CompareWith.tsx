import { Button, Group, Modal, MultiSelect, Stack, Text } from '@mantine/core';
import { IconArrowsLeftRight, IconChartDots } from '@tabler/icons-react';
import { useState } from 'react';
import type { ExperimentDetail } from '../../preload/contract.ts';
import { COMPARE_MAX } from '../../preload/comparison.ts';
import { useCall } from '../hooks/useCall.ts';
import { navigate } from '../hooks/useRoute.ts';
import { baseName } from '../lib/format.ts';
import { href } from '../lib/route.ts';

/** How many recent finished experiments the picker offers (its search narrows them). */
const OFFERED = 200;

/** "Compare with…": pick up to 7 other finished experiments and open them beside this one (this one the baseline). */
export function CompareWithButton({ detail }: { detail: ExperimentDetail }) {
  const [open, setOpen] = useState(false);
  const [picked, setPicked] = useState<string[]>([]);
  const others = useCall('history.list', open ? { status: 'done', sort: 'created', order: 'desc', limit: OFFERED } : null);
  const options = (others.data?.items ?? []).filter((e) => e.id !== detail.id).map((e) => ({
    value: String(e.id),
    label: `#${e.id} ${e.name} · ${baseName(e.modelPath)}`,
  }));
  const compare = () => navigate(href.compare([detail.id, ...picked.map(Number)], detail.id));
  return (
    <>
      <Button variant="light" leftSection={<IconArrowsLeftRight size={16} />} onClick={() => setOpen(true)} data-testid="detail-compare-with">Compare with…</Button>
      <Modal opened={open} onClose={() => setOpen(false)} title={`Compare #${detail.id} with…`} size="lg" centered>
        <Stack gap="sm">
          <MultiSelect data={options} value={picked} onChange={setPicked} searchable maxValues={COMPARE_MAX - 1} placeholder={others.loading ? 'Loading…' : 'Pick experiments'}
            nothingFoundMessage="No finished experiment matches" aria-label="Experiments to compare with" comboboxProps={{ withinPortal: true }} data-testid="compare-with-pick" />
          <Text size="xs" c="dimmed">#{detail.id} is the baseline; up to {COMPARE_MAX - 1} others. The most recent {OFFERED} finished experiments are offered.</Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)}>Cancel</Button>
            <Button disabled={picked.length === 0} onClick={compare} data-testid="compare-with-go">Compare {picked.length + 1}</Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

/** The Pareto view of the model this experiment started from (its original, through lineage). */
export function ParetoButton({ detail }: { detail: ExperimentDetail }) {
  if (!detail.modelSha256) return null;
  return (
    <Button component="a" href={href.pareto({ sha256: detail.modelSha256 })} variant="light" leftSection={<IconChartDots size={16} />} data-testid="detail-pareto">Pareto view</Button>
  );
}
