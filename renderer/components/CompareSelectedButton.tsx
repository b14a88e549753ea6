import { Button, Tooltip } from '@mantine/core';
import { IconArrowsLeftRight } from '@tabler/icons-react';
import type { ReactNode } from 'react';
import { COMPARE_MAX, COMPARE_MIN } from '../../preload/comparison.ts';
import { href } from '../lib/route.ts';

/** "Compare selected" for the history list's selection bar: opens the Compare page with the ticked runs (2–8), oldest first. */
export function CompareSelectedButton({ selected }: { selected: readonly number[] }) {
  const ids = [...selected].sort((a, b) => a - b);
  const ok = ids.length >= COMPARE_MIN && ids.length <= COMPARE_MAX;
  const why = ids.length < COMPARE_MIN ? `Tick at least ${COMPARE_MIN} experiments to compare them.` : `A comparison holds at most ${COMPARE_MAX} experiments; ${ids.length} are ticked.`;
  return (
    <Tooltip label={why} disabled={ok}>
      <Button size="xs" variant="light" leftSection={<IconArrowsLeftRight size={14} />} component="a" href={ok ? href.compare(ids) : undefined}
        data-disabled={!ok || undefined} onClick={(e) => { if (!ok) e.preventDefault(); }} data-testid="history-compare-selected">
        Compare selected
      </Button>
    </Tooltip>
  );
}

/** The history page's selection actions: compare the ticked experiments. */
export const compareSelection = (selected: readonly number[]): ReactNode => <CompareSelectedButton selected={selected} />;
