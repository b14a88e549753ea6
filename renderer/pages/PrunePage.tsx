import { Alert, Button, Grid, Group, Paper, Stack, Stepper, Table, Text, TextInput, Title } from '@mantine/core';
import { IconArrowLeft, IconArrowRight, IconChartBar } from '@tabler/icons-react';
import { useDebouncedValue } from '@mantine/hooks';
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { ErrorShape, ExperimentDetail, Sample } from '../../preload/contract.ts';
import { PruneStep } from '../../preload/recipe.ts';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { JobPanel } from '../components/JobPanel.tsx';
import { ModelEvaluationFields } from '../components/ModelEvaluationFields.tsx';
import { PruneMethodCards, PruneTargetFields } from '../components/PruneMethodFields.tsx';
import { PrunePlanPreview } from '../components/PrunePlanPreview.tsx';
import { QuantizeResult, type QuantizeOutcome } from '../components/QuantizeResult.tsx';
import { RecipeActions } from '../components/RecipeActions.tsx';
import { useApi } from '../hooks/useApi.ts';
import { useCall } from '../hooks/useCall.ts';
import { useJob, useJobStore } from '../hooks/useJobs.ts';
import { replaceHash } from '../hooks/useRoute.ts';
import { onAsync, reportRejection } from '../lib/async-handler.ts';
import { toUiError } from '../lib/errors.ts';
import { jobPhase } from '../lib/job-state.ts';
import { fetchPrefill } from '../lib/prefill.ts';
import {
  buildPruneRecipe, buildPruneStep, defaultPruneForm, defaultPruneName, firstPruneStepWithIssues, gainNote, needsCalibration, percent, pruneFormFromRecipe,
  pruneIssuesForStep, pruneIssuesFromServer, pruneMethodOf, pruneSettingsLine, validatePruneForm, type PruneForm, type PruneIssues,
} from '../lib/prune-form.ts';
import { pruneReportOf } from '../lib/prune-report.ts';
import { parseKeepPatterns } from '../lib/quantize-form.ts';
import { parseLines } from '../lib/recipe-form.ts';
import { href } from '../lib/route.ts';

interface Props { path: string; jobId: string | null; experimentId: number | null }

const STEP = { model: 0, method: 1, targets: 2, run: 3, result: 4 } as const;

const calibrationTextOf = (s: Sample): string => s.calibrationTextPath ?? s.textPath;

/** Fill what the user has not typed: the sample texts, and the sample's tokenizer for the sample model. */
function withSampleDefaults(form: PruneForm, samples: readonly Sample[]): PruneForm {
  if (samples.length === 0) return form;
  const match = samples.find((s) => s.modelPath === form.modelPath.trim());
  const next = { ...form };
  if (!next.textPath) next.textPath = (match ?? samples[0]).textPath;
  if (!next.calibText) next.calibText = calibrationTextOf(match ?? samples[0]);
  if (!next.tokenizerPath && match) next.tokenizerPath = match.tokenizerPath;
  return next;
}

const hasIssues = (issues: PruneIssues): boolean => Object.values(issues).some(Boolean);

function StepBody({ testId, title, intro, children }: { testId: string; title: string; intro: ReactNode; children: ReactNode }) {
  return (
    <Stack gap="md" pt="md" data-testid={testId}>
      <Stack gap={2}>
        <Title order={3}>{title}</Title>
        <Text size="sm" c="dimmed">{intro}</Text>
      </Stack>
      {children}
    </Stack>
  );
}

function Review({ form }: { form: PruneForm }) {
  const keep = parseKeepPatterns(form.keepText);
  const rows: [string, ReactNode][] = [
    ['Model', <Text key="m" size="sm" ff="monospace" className="wrap-anywhere">{form.modelPath}</Text>],
    ['Method', pruneMethodOf(form.method).name],
    ['Settings', pruneSettingsLine(form)],
  ];
  if (needsCalibration(form)) {
    rows.push(['Calibration', <Text key="c" size="sm" className="wrap-anywhere">{`${form.calibSamples} × ${form.calibLength} tokens, seed ${form.calibSeed}, from `}<Text span size="sm" ff="monospace">{form.calibText}</Text></Text>]);
  }
  rows.push(
    ['Keep', keep.length === 0 ? 'no patterns (embedding and LM head kept)' : <Text key="k" size="sm" ff="monospace" className="wrap-anywhere">{keep.join('  ·  ')}</Text>],
    ['Evaluation', form.evaluate
      ? `perplexity (documents, L = ${form.window}, N = ${form.maxSamples}), ${parseLines(form.prompts).length} prompt(s)${form.speed ? ', speed' : ''}, size on disk and compressed`
      : `${form.speed ? 'speed, ' : ''}size on disk and compressed`],
  );
  return (
    <Table data-testid="prune-review" verticalSpacing={6}>
      <Table.Tbody>
        {rows.map(([k, v]) => (
          <Table.Tr key={k}><Table.Td w={140}><Text size="sm" c="dimmed">{k}</Text></Table.Td><Table.Td><Text size="sm" component="div">{v}</Text></Table.Td></Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** What the prune step did, in one sentence, for the comparison's heading. */
function resultSummary(details: unknown): string | undefined {
  const report = pruneReportOf(details);
  if (!report) return undefined;
  if (report.kind === 'structured') {
    const removed = report.paramsBefore - report.paramsAfter;
    return `${removed.toLocaleString('en-US')} parameters removed (${report.paramsBefore > 0 ? percent(removed / report.paramsBefore) : '—'}).`;
  }
  return `${percent(report.achieved)} of the pruned weights are zero, ${report.skipped.length} weight${report.skipped.length === 1 ? '' : 's'} left dense.`;
}

export function PrunePage({ path, jobId, experimentId }: Props) {
  const api = useApi();
  const store = useJobStore();
  const [form, setForm] = useState<PruneForm>(() => defaultPruneForm(path));
  const [samples, setSamples] = useState<Sample[]>([]);
  const [active, setActive] = useState<number>(jobId || experimentId ? STEP.run : STEP.model);
  const [issues, setIssues] = useState<PruneIssues>({});
  const [checked, setChecked] = useState(false);
  const [checking, setChecking] = useState(false);
  const [modelError, setModelError] = useState<ErrorShape | null>(null);
  const [startError, setStartError] = useState<ErrorShape | null>(null);
  const [starting, setStarting] = useState(false);
  const [stored, setStored] = useState<ExperimentDetail | null>(null);
  const job = useJob(jobId, experimentId);
  const phase = job ? jobPhase(job) : null;
  const running = phase === 'starting' || phase === 'running';

  // Prefill: the experiment's stored recipe when attached to one (re-run, compare from the history), else the sample's files.
  useEffect(() => {
    let alive = true;
    (async () => {
      const { samples: list, stored: detail } = await fetchPrefill(api, experimentId);
      if (!alive) return;
      setSamples(list);
      const fromRecipe = detail ? pruneFormFromRecipe(detail.recipe) : null;
      if (detail && !jobId) {
        const live = (await api.call('jobs.list', {}).catch(() => [])).find((j) => j.experimentId === experimentId);
        if (!alive) return;
        if (live) replaceHash(href.prune(detail.modelPath, live));
        else {
          setStored(detail);
          if (detail.status === 'done') setActive(STEP.result);
        }
      }
      setForm((f) => fromRecipe ?? withSampleDefaults(f, list));
    })().catch(reportRejection);
    return () => { alive = false; };
    // Once per visit (the page is re-created on navigation); later URL changes come from this page.
  }, [api]);

  // A job that finishes well moves the wizard to the comparison (once per job).
  const advancedFor = useRef<string | null>(null);
  useEffect(() => {
    if (!job || advancedFor.current === job.jobId) return;
    if (job.finished?.status === 'done' && job.result) {
      advancedFor.current = job.jobId;
      setActive(STEP.result);
    }
  }, [job]);

  const outcome: QuantizeOutcome | null = job?.result
    ?? (!jobId && stored && stored.status === 'done' ? { metrics: stored.metrics, artefacts: stored.artefacts, details: stored.details } : null);
  const recipe = useMemo(() => buildPruneRecipe(form), [form]);

  // The preview (prune.plan: weights, per-block sparsity or removals, size after) follows the settings, debounced, on the Targets step.
  const planStep = useMemo(() => { const r = PruneStep.safeParse(buildPruneStep(form)); return r.success ? r.data : null; }, [form]);
  const planKey = form.modelPath.trim() && planStep ? JSON.stringify({ path: form.modelPath.trim(), step: planStep }) : null;
  const [debouncedKey] = useDebouncedValue(planKey, 250);
  const plan = useCall('prune.plan', active === STEP.targets && debouncedKey !== null ? (JSON.parse(debouncedKey) as { path: string; step: PruneStep }) : null);
  const planLoading = plan.loading || (planKey !== debouncedKey && planKey !== null);

  function change(next: PruneForm) {
    const sample = samples.find((s) => s.modelPath === next.modelPath.trim());
    if (sample && next.modelPath !== form.modelPath && !next.tokenizerPath) next = { ...next, tokenizerPath: sample.tokenizerPath };
    if (next.modelPath !== form.modelPath) setModelError(null);
    setForm(next);
    if (checked) setIssues(validatePruneForm(next));
  }

  function pickSample(s: Sample) {
    change({ ...form, modelPath: s.modelPath, tokenizerPath: s.tokenizerPath, textPath: s.textPath, calibText: calibrationTextOf(s) });
  }

  async function next() {
    setChecked(true);
    const all = validatePruneForm(form);
    setIssues(all);
    if (hasIssues(pruneIssuesForStep(all, active))) return;
    if (active === STEP.model) {
      setChecking(true);
      setModelError(null);
      try {
        await api.call('models.inspect', { path: form.modelPath.trim() });
      } catch (e) {
        setModelError(toUiError(e));
        return;
      } finally {
        setChecking(false);
      }
    }
    setActive((a) => Math.min(a + 1, STEP.run));
  }

  async function run() {
    setChecked(true);
    setStartError(null);
    const local = validatePruneForm(form);
    setIssues(local);
    const bad = firstPruneStepWithIssues(local);
    if (bad >= 0) {
      if (bad < STEP.run) setActive(bad);
      return;
    }
    setStarting(true);
    try {
      const verdict = await api.call('recipes.validate', { recipe });
      if (!verdict.ok) {
        const server = pruneIssuesFromServer(verdict.issues);
        setIssues(server);
        const at = firstPruneStepWithIssues(server);
        if (at >= 0 && at < STEP.run) setActive(at);
        return;
      }
      const started = await api.call('jobs.start', { recipe, name: form.name.trim() || defaultPruneName(form) });
      store.track(started.jobId, started.experimentId);
      replaceHash(href.prune(form.modelPath.trim(), started));
    } catch (e) {
      setStartError(toUiError(e));
    } finally {
      setStarting(false);
    }
  }

  function again() {
    setStored(null);
    setStartError(null);
    setActive(STEP.method);
    replaceHash(href.prune(form.modelPath.trim()));
  }

  const shownIssues = checked ? issues : {};
  const note = gainNote(form.method);

  return (
    <Stack gap="md">
      <Stack gap={2}>
        <Title order={2}>Prune</Title>
        <Text size="sm" c="dimmed">Set weights to zero — or remove whole heads, neurons or blocks — then measure the result against the original on the same text. Every run is kept in the history.</Text>
      </Stack>
      <Stepper active={active} onStepClick={(i) => { if (!running && !starting && i < active) setActive(i); }} allowNextStepsSelect={false} size="sm" data-testid="wizard">
        <Stepper.Step label="Model" description="What to prune" data-testid="wizard-tab-model">
          <StepBody testId="wizard-step-model" title="Model" intro="The ONNX model, its tokenizer, and the text both models are evaluated on.">
            <ModelEvaluationFields form={form} issues={shownIssues} samples={samples} onChange={change} onSample={pickSample} testIdPrefix="prune" />
            {modelError && <ErrorAlert error={modelError} testId="prune-model-error" />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Method" description="How" data-testid="wizard-tab-method">
          <StepBody testId="wizard-step-method" title="Method" intro="Unstructured methods zero single weights; structured pruning removes whole parts of the graph.">
            <PruneMethodCards form={form} onChange={change} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Targets" description="Which and how much" data-testid="wizard-tab-targets">
          <StepBody testId="wizard-step-targets" title="Targets and sparsity" intro={pruneMethodOf(form.method).tradeoff}>
            <PruneTargetFields form={form} issues={shownIssues} onChange={change} />
            {planKey !== null && <PrunePlanPreview plan={plan.data} loading={planLoading} error={plan.error} />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Run" description="Prune and evaluate" data-testid="wizard-tab-run">
          <StepBody testId="wizard-step-run" title="Run" intro="Check the settings, then run. The weights are pruned block by block, then the original and the result are evaluated.">
            <Grid gap="md">
              <Grid.Col span={{ base: 12, lg: job ? 6 : 8 }}>
                <Paper withBorder radius="md" p="md">
                  <Stack gap="md">
                    <Review form={form} />
                    <Alert variant="light" color={note.color} title={note.title} data-testid="prune-run-note">{note.text}</Alert>
                    <TextInput label="Name" description="Shown in the history; optional." placeholder={defaultPruneName(form)} value={form.name}
                      onChange={(e) => change({ ...form, name: e.currentTarget.value })} maxLength={200} error={shownIssues.name} disabled={running}
                      data-testid="prune-name" />
                    {shownIssues.form && <Alert color="red" variant="light" title="The recipe is not valid" data-testid="validation-issues">{shownIssues.form}</Alert>}
                    {startError && <ErrorAlert error={startError} testId="prune-error" />}
                    <RecipeActions recipe={recipe} onRun={onAsync(run)} starting={starting} running={running} runTestId="prune-start" />
                  </Stack>
                </Paper>
              </Grid.Col>
              {job && (
                <Grid.Col span={{ base: 12, lg: 6 }}>
                  <Stack gap="sm">
                    <JobPanel job={job} showMetrics={false} />
                    {outcome && (
                      <Button leftSection={<IconChartBar size={16} />} onClick={() => setActive(STEP.result)} data-testid="show-comparison">See the comparison</Button>
                    )}
                  </Stack>
                </Grid.Col>
              )}
            </Grid>
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Result" description="Original vs result" data-testid="wizard-tab-result">
          <Stack gap="md" pt="md" data-testid="wizard-step-result">
            {outcome
              ? <QuantizeResult outcome={outcome} experimentId={job?.experimentId ?? stored?.id ?? experimentId} settings={pruneSettingsLine(form)} onAgain={again}
                summary={resultSummary(outcome.details) ?? ''} againLabel="Prune again" />
              : <Text size="sm" c="dimmed">No result yet.</Text>}
          </Stack>
        </Stepper.Step>
      </Stepper>

      {active < STEP.run && (
        <Group justify="space-between">
          <Button variant="default" leftSection={<IconArrowLeft size={16} />} onClick={() => setActive((a) => Math.max(0, a - 1))} disabled={active === 0} data-testid="wizard-back">Back</Button>
          <Button rightSection={<IconArrowRight size={16} />} onClick={onAsync(next)} loading={checking} data-testid="wizard-next">Next</Button>
        </Group>
      )}
      {active === STEP.run && (
        <Group>
          <Button variant="default" leftSection={<IconArrowLeft size={16} />} onClick={() => setActive(STEP.targets)} disabled={running || starting} data-testid="wizard-back">Back</Button>
        </Group>
      )}
    </Stack>
  );
}
