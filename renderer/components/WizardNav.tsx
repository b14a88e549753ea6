/**
 * The Back / Next buttons under a wizard's steps. Before the Run step: Back to the previous step and Next
 * (which checks the current step). On the Run step: Back to `beforeRun` only, disabled while a job starts
 * or runs. After it (the result) nothing: the result has its own actions.
 */
import { Button, Group } from '@mantine/core';
import { IconArrowLeft, IconArrowRight } from '@tabler/icons-react';
import { onAsync } from '../lib/async-handler.ts';

export interface WizardNavProps {
  active: number;
  runStep: number;
  /** The step Back leads to from the Run step. */
  beforeRun: number;
  onStep: (step: number) => void;
  next: () => Promise<unknown>;
  checking: boolean;
  busy: boolean;
}

export function WizardNav({ active, runStep, beforeRun, onStep, next, checking, busy }: WizardNavProps) {
  if (active < runStep) {
    return (
      <Group justify="space-between">
        <Button variant="default" leftSection={<IconArrowLeft size={16} />} onClick={() => onStep(Math.max(0, active - 1))} disabled={active === 0} data-testid="wizard-back">Back</Button>
        <Button rightSection={<IconArrowRight size={16} />} onClick={onAsync(next)} loading={checking} data-testid="wizard-next">Next</Button>
      </Group>
    );
  }
  if (active === runStep) {
    return (
      <Group>
        <Button variant="default" leftSection={<IconArrowLeft size={16} />} onClick={() => onStep(beforeRun)} disabled={busy} data-testid="wizard-back">Back</Button>
      </Group>
    );
  }
  return null;
}
