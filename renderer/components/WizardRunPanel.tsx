import { Alert, Button, Grid, Group, Paper, Select, Stack, TextInput } from '@mantine/core';
import { IconChartBar, IconGridDots } from '@tabler/icons-react';
import { useState, type ReactNode } from 'react';
import type { ErrorShape } from '../../preload/contract.ts';
import type { OutputLayout } from '../../preload/recipe.ts';
import type { JobState } from '../lib/job-state.ts';
import { onAsync } from '../lib/async-handler.ts';
import { isOutputLayout, LAYOUT_CHOICES } from '../lib/output-layout.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { JobPanel } from './JobPanel.tsx';
import { RecipeActions } from './RecipeActions.tsx';
import { SweepDialog } from './SweepDialog.tsx';

interface Props {
  /** What the run will do (the review, notes), above the name. */
  children: ReactNode;
  /** Prefix of the test ids: `<prefix>-name`, `<prefix>-error`, `<prefix>-start`. */
  testIdPrefix: string;
  name: string;
  namePlaceholder: string;
  onName: (name: string) => void;
  nameError?: string;
  /** The recipe's own problem, if any (shown above the actions). */
  formIssue?: string;
  startError: ErrorShape | null;
  recipe: unknown;
  run: () => Promise<void>;
  starting: boolean;
  running: boolean;
  job: JobState | null;
  /** Shown under the running job (e.g. live training curves). */
  beside?: ReactNode;
  /** The job has a result: offer the comparison. */
  done: boolean;
  onShowComparison: () => void;
  /** The output folder's layout (recipe `output.layout`); the select shows when `onLayout` is given. */
  layout?: OutputLayout;
  onLayout?: (layout: OutputLayout) => void;
}

/** The Run step of every wizard: review, name, start, and the job beside them while it runs. */
export function WizardRunPanel(p: Props) {
  const [sweeping, setSweeping] = useState(false);
  return (
    <Grid gap="md">
      <Grid.Col span={{ base: 12, lg: p.job ? 6 : 8 }}>
        <Paper withBorder radius="md" p="md">
          <Stack gap="md">
            {p.children}
            <TextInput label="Name" description="Shown in the history; optional." placeholder={p.namePlaceholder} value={p.name}
              onChange={(e) => p.onName(e.currentTarget.value)} maxLength={200} error={p.nameError} disabled={p.running}
              data-testid={`${p.testIdPrefix}-name`} />
            {p.onLayout && (
              <Select label="Output layout" description="The output folder always has model.onnx; a layout adds the files another runtime loads." data={LAYOUT_CHOICES}
                value={p.layout ?? 'plain'} onChange={(v) => { if (isOutputLayout(v)) p.onLayout?.(v); }} allowDeselect={false} disabled={p.running}
                data-testid={`${p.testIdPrefix}-layout`} />
            )}
            {p.formIssue && <Alert color="red" variant="light" title="The recipe is not valid" data-testid="validation-issues">{p.formIssue}</Alert>}
            {p.startError && <ErrorAlert error={p.startError} testId={`${p.testIdPrefix}-error`} />}
            <RecipeActions recipe={p.recipe} onRun={onAsync(p.run)} starting={p.starting} running={p.running} runTestId={`${p.testIdPrefix}-start`} />
            {/* The same recipe over a grid of values (bits × block size, sparsities…), one experiment per combination. */}
            <Group justify="flex-end">
              <Button variant="subtle" size="compact-sm" leftSection={<IconGridDots size={14} />} onClick={() => setSweeping(true)} disabled={p.running || p.starting}
                data-testid={`${p.testIdPrefix}-sweep`}>Sweep over a grid of values…</Button>
            </Group>
            {sweeping && <SweepDialog opened onClose={() => setSweeping(false)} recipe={p.recipe} />}
          </Stack>
        </Paper>
      </Grid.Col>
      {p.job && (
        <Grid.Col span={{ base: 12, lg: 6 }}>
          <Stack gap="sm">
            <JobPanel job={p.job} showMetrics={false} />
            {p.beside}
            {p.done && (
              <Button leftSection={<IconChartBar size={16} />} onClick={p.onShowComparison} data-testid="show-comparison">See the comparison</Button>
            )}
          </Stack>
        </Grid.Col>
      )}
    </Grid>
  );
}
