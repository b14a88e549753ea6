import { Alert, Grid, Group, Paper, Stack, Text, Title } from '@mantine/core';
import { useEffect, useMemo, useState } from 'react';
import type { ErrorShape, Sample } from '../../preload/contract.ts';
import { EvaluateFormFields } from '../components/EvaluateFormFields.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { JobPanel } from '../components/JobPanel.tsx';
import { RecipeActions } from '../components/RecipeActions.tsx';
import { useApi } from '../hooks/useApi.ts';
import { fetchPrefill } from '../lib/prefill.ts';
import { useJob, useJobStore } from '../hooks/useJobs.ts';
import { replaceHash } from '../hooks/useRoute.ts';
import { toUiError } from '../lib/errors.ts';
import {
  buildRecipe, defaultEvaluateForm, formFromRecipe, issuesFromServer, validateEvaluateForm, type EvaluateForm, type FormIssues,
} from '../lib/evaluate-form.ts';
import { jobPhase } from '../lib/job-state.ts';
import { baseName } from '../lib/format.ts';
import { href } from '../lib/route.ts';
import { onAsync, reportRejection } from '../lib/async-handler.ts';

interface Props { path: string; jobId: string | null; experimentId: number | null }

/** Fill what the user has not typed, for the sample model only (a model of the user's own gets no TinyStories text: the form asks). */
function withSampleDefaults(form: EvaluateForm, samples: readonly Sample[]): EvaluateForm {
  const match = samples.find((s) => s.modelPath === form.modelPath.trim());
  if (!match) return form;
  const next = { ...form };
  if (!next.textPath) next.textPath = match.textPath;
  if (!next.tokenizerPath) next.tokenizerPath = match.tokenizerPath;
  return next;
}

function hasIssues(issues: FormIssues): boolean {
  return Object.values(issues).some(Boolean);
}

export function EvaluatePage({ path, jobId, experimentId }: Props) {
  const api = useApi();
  const store = useJobStore();
  const [form, setForm] = useState<EvaluateForm>(() => defaultEvaluateForm(path));
  const [samples, setSamples] = useState<Sample[]>([]);
  const [issues, setIssues] = useState<FormIssues>({});
  const [checked, setChecked] = useState(false);
  const [startError, setStartError] = useState<ErrorShape | null>(null);
  const [starting, setStarting] = useState(false);
  const job = useJob(jobId, experimentId);
  const running = job !== null && (jobPhase(job) === 'starting' || jobPhase(job) === 'running');

  // Prefill: from the experiment's stored recipe when attached to one, else sample defaults.
  useEffect(() => {
    let alive = true;
    (async () => {
      const { samples: list, stored } = await fetchPrefill(api, experimentId);
      if (!alive) return;
      setSamples(list);
      const fromRecipe = stored ? formFromRecipe(stored.recipe) : null;
      setForm((f) => fromRecipe ?? withSampleDefaults(f, list));
    })().catch(reportRejection);
    return () => { alive = false; };
    // Once per visit (the page is re-created on navigation); later URL changes come from this page.
  }, [api]);

  const recipe = useMemo(() => buildRecipe(form), [form]);

  function change(next: EvaluateForm) {
    const sample = samples.find((s) => s.modelPath === next.modelPath.trim());
    if (sample && next.modelPath !== form.modelPath && !next.tokenizerPath) next = { ...next, tokenizerPath: sample.tokenizerPath };
    setForm(next);
    if (checked) setIssues(validateEvaluateForm(next));
  }

  async function run() {
    setChecked(true);
    setStartError(null);
    const local = validateEvaluateForm(form);
    setIssues(local);
    if (hasIssues(local)) return;
    setStarting(true);
    try {
      const verdict = await api.call('recipes.validate', { recipe });
      if (!verdict.ok) {
        setIssues(issuesFromServer(verdict.issues));
        return;
      }
      const name = form.name.trim() || `Evaluate ${baseName(form.modelPath.trim())}`;
      const started = await api.call('jobs.start', { recipe, name });
      store.track(started.jobId, started.experimentId);
      replaceHash(href.evaluate(form.modelPath.trim(), started));
    } catch (e) {
      setStartError(toUiError(e));
    } finally {
      setStarting(false);
    }
  }

  return (
    <Stack gap="md">
      <Group justify="space-between" wrap="nowrap">
        <Stack gap={2} style={{ minWidth: 0 }}>
          <Title order={2}>Evaluate</Title>
          <Text size="sm" c="dimmed">Perplexity on a text, speed and footprint of one model. Every run is kept in the history.</Text>
        </Stack>
      </Group>
      <Grid gap="md">
        <Grid.Col span={{ base: 12, lg: job ? 6 : 8 }}>
          <Paper withBorder p="md" radius="md">
            <Stack gap="md">
              <EvaluateFormFields form={form} issues={issues} onChange={change} disabled={starting} />
              {issues.form && <Alert color="red" variant="light" title="The recipe is not valid" data-testid="validation-issues">{issues.form}</Alert>}
              {checked && hasIssues(issues) && !issues.form && (
                <Text size="sm" c="red" data-testid="validation-issues">Fix the highlighted fields to run.</Text>
              )}
              {startError && <ErrorAlert error={startError} testId="evaluate-error" />}
              <RecipeActions recipe={recipe} onRun={onAsync(run)} starting={starting} running={running} runTestId="evaluate-start" />
            </Stack>
          </Paper>
        </Grid.Col>
        {job && (
          <Grid.Col span={{ base: 12, lg: 6 }}>
            <JobPanel job={job} />
          </Grid.Col>
        )}
      </Grid>
    </Stack>
  );
}
