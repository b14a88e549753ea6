import { Alert, Button, Group, List, Modal, Stack, Text, Textarea, TextInput } from '@mantine/core';
import { IconGridDots } from '@tabler/icons-react';
import { useMemo, useState } from 'react';
import { experimentNameOf } from '../../preload/naming.ts';
import { assignmentLabel, expandSweep, MAX_SWEEP_SIZE, parseGridArguments, sweepIssues, type SweepGrid, type SweepMember } from '../../preload/sweep.ts';
import { useApi } from '../hooks/useApi.ts';
import { useJobStore } from '../hooks/useJobs.ts';
import { navigate } from '../hooks/useRoute.ts';
import { toUiError } from '../lib/errors.ts';
import { href } from '../lib/route.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import type { ErrorShape } from '../../preload/contract.ts';

/** A starting grid for the recipe's first step: bits × group size for weight-only quantization, sparsity for pruning. */
export function suggestedGrid(recipe: unknown): string {
  const step = (recipe as { steps?: { type?: string; method?: string }[] } | null)?.steps?.[0];
  if (step?.type === 'quantize' && (step.method === 'rtn' || step.method === 'gptq')) return 'steps.0.bits=4,8\nsteps.0.blockSize=32,128';
  if (step?.type === 'prune' && step.method !== 'structured') return 'steps.0.sparsity=0.3,0.5,0.7';
  if (step?.type === 'prune') return 'steps.0.ratio=0.125,0.25';
  return '';
}

interface Preview {
  grid: SweepGrid | null;
  members: SweepMember[];
  /** What is wrong with the grid text or the combinations, one line each. */
  problems: string[];
}

/** The grid editor's text → the combinations and every problem, checked as the server will check them. */
export function previewSweep(recipe: unknown, text: string): Preview {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return { grid: null, members: [], problems: ['Add at least one line key=v1,v2 (for example steps.0.bits=4,8).'] };
  let grid: SweepGrid;
  let members: SweepMember[];
  try {
    grid = parseGridArguments(lines);
    members = expandSweep(recipe, grid);
  } catch (e) {
    return { grid: null, members: [], problems: [`${(e as Error).message}.`] };
  }
  const bad = new Map<string, string[]>();
  for (const i of sweepIssues(members)) {
    const label = assignmentLabel(i.assignment);
    bad.set(label, [...(bad.get(label) ?? []), i.path ? `${i.path}: ${i.message}` : i.message]);
  }
  return { grid, members, problems: [...bad].map(([label, list]) => `${label}: ${list.join('; ')}`) };
}

/**
 * "Sweep…": the experiment's recipe run once per combination of a grid of values (one line per key,
 * `steps.0.bits=4,8`), every combination checked before anything starts; the group's page opens.
 */
export function SweepDialog({ opened, onClose, recipe }: { opened: boolean; onClose: () => void; recipe: unknown }) {
  const api = useApi();
  const store = useJobStore();
  const [text, setText] = useState(() => suggestedGrid(recipe));
  const [name, setName] = useState('');
  const [starting, setStarting] = useState(false);
  const [error, setError] = useState<ErrorShape | null>(null);
  const preview = useMemo(() => previewSweep(recipe, text), [recipe, text]);
  const ready = preview.grid !== null && preview.problems.length === 0;

  async function start(): Promise<void> {
    if (!preview.grid) return;
    setStarting(true);
    setError(null);
    try {
      const started = await api.call('sweeps.start', { recipe, grid: preview.grid, ...(name.trim() ? { name: name.trim() } : {}) });
      for (const j of started.jobs) store.track(j.jobId, j.experimentId);
      onClose();
      navigate(href.sweep(started.groupId));
    } catch (e) {
      setError(toUiError(e));
    } finally {
      setStarting(false);
    }
  }

  return (
    <Modal opened={opened} onClose={onClose} title="Sweep: run this recipe over a grid of values" size="lg" data-testid="sweep-dialog">
      <Stack gap="sm">
        <Textarea
          label="Grid" autosize minRows={3} maxRows={10} value={text} onChange={(e) => setText(e.currentTarget.value)}
          description="One line per field: a dotted path into the recipe and its values, e.g. steps.0.method=rtn,gptq. Every combination runs, one after another."
          styles={{ input: { fontFamily: 'var(--mantine-font-family-monospace)' } }} data-testid="sweep-grid"
        />
        <TextInput label="Name" description="Of the group; optional." placeholder="Sweep <fields> · <model>" value={name} onChange={(e) => setName(e.currentTarget.value)} maxLength={200} data-testid="sweep-name" />
        {preview.problems.length > 0 ? (
          <Alert color="red" title={preview.grid ? `${preview.problems.length} of ${preview.members.length} combinations are not valid recipes` : 'The grid cannot be read'} data-testid="sweep-problems">
            <List size="sm" spacing={2}>{preview.problems.slice(0, 12).map((p) => <List.Item key={p} className="wrap-anywhere">{p}</List.Item>)}</List>
          </Alert>
        ) : (
          <Stack gap={4} data-testid="sweep-preview">
            <Text size="sm" fw={600} data-testid="sweep-count">{preview.members.length} experiment{preview.members.length === 1 ? '' : 's'} (at most {MAX_SWEEP_SIZE})</Text>
            <List size="sm" spacing={2}>
              {preview.members.slice(0, 12).map((m) => <List.Item key={m.index}>{experimentNameOf(m.recipe) ?? assignmentLabel(m.assignment)} <Text span size="xs" c="dimmed">({assignmentLabel(m.assignment)})</Text></List.Item>)}
              {preview.members.length > 12 && <List.Item>… and {preview.members.length - 12} more</List.Item>}
            </List>
          </Stack>
        )}
        {error && <ErrorAlert error={error} testId="sweep-error" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>Cancel</Button>
          <Button leftSection={<IconGridDots size={16} />} onClick={() => void start()} loading={starting} disabled={!ready} data-testid="sweep-start">
            Start {preview.members.length > 0 ? preview.members.length : ''} experiments
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
