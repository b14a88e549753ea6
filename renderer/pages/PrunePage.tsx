import { Alert, Stack, Stepper, Table, Text, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useMemo, type ReactNode } from 'react';
import { PruneStep } from '../../preload/recipe.ts';
import { WizardRunPanel } from '../components/WizardRunPanel.tsx';
import { WizardNav } from '../components/WizardNav.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';

import { ModelEvaluationFields } from '../components/ModelEvaluationFields.tsx';
import { PruneMethodCards, PruneTargetFields } from '../components/PruneMethodFields.tsx';
import { PrunePlanPreview } from '../components/PrunePlanPreview.tsx';
import { QuantizeResult } from '../components/QuantizeResult.tsx';
import { RecoverFields } from '../components/RecoverFields.tsx';
import { useCall } from '../hooks/useCall.ts';
import { useRecipeWizard, type WizardSpec } from '../hooks/useRecipeWizard.ts';
import { buildPruneRecipe, buildPruneStep, defaultPruneForm, defaultPruneName, firstPruneStepWithIssues, gainNote, needsCalibration, percent, pruneFormFromRecipe, pruneIssuesForStep, pruneIssuesFromServer, pruneMethodOf, pruneSettingsLine, validatePruneForm, type PruneForm, type PruneIssues } from '../lib/prune-form.ts';
import { pruneReportOf } from '../lib/prune-report.ts';
import { parseKeepPatterns } from '../lib/quantize-form.ts';
import { parseLines } from '../lib/recipe-form.ts';
import { href } from '../lib/route.ts';

interface Props { path: string; jobId: string | null; experimentId: number | null; from?: number | null }

const STEP = { model: 0, method: 1, targets: 2, run: 3, result: 4 } as const;

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

const PRUNE_WIZARD: WizardSpec<PruneForm, PruneIssues> = {
  steps: STEP,
  initialForm: defaultPruneForm,
  formFromRecipe: pruneFormFromRecipe,
  validate: validatePruneForm,
  issuesForStep: pruneIssuesForStep,
  firstStepWithIssues: firstPruneStepWithIssues,
  issuesFromServer: pruneIssuesFromServer,
  buildRecipe: buildPruneRecipe,
  defaultName: defaultPruneName,
  href: href.prune,
};

export function PrunePage({ path, jobId, experimentId, from = null }: Props) {
  const {
    form, samples, active, setActive, issues: shownIssues, checking, modelError, startError, starting, stored, job, running,
    outcome, recipe, defaultName, change, pickSample, next, run, again, layout, setLayout,
  } = useRecipeWizard(PRUNE_WIZARD, { path, jobId, experimentId, from });

  // The preview (prune.plan: weights, per-block sparsity or removals, size after) follows the settings, debounced, on the Targets step.
  const planStep = useMemo(() => { const r = PruneStep.safeParse(buildPruneStep(form)); return r.success ? r.data : null; }, [form]);
  const planKey = form.modelPath.trim() && planStep ? JSON.stringify({ path: form.modelPath.trim(), step: planStep }) : null;
  const [debouncedKey] = useDebouncedValue(planKey, 250);
  const plan = useCall('prune.plan', active === STEP.targets && debouncedKey !== null ? (JSON.parse(debouncedKey) as { path: string; step: PruneStep }) : null);
  const planLoading = plan.loading || (planKey !== debouncedKey && planKey !== null);

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
            <RecoverFields form={form} issues={shownIssues} onChange={change} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Run" description="Prune and evaluate" data-testid="wizard-tab-run">
          <StepBody testId="wizard-step-run" title="Run" intro="Check the settings, then run. The weights are pruned block by block, then the original and the result are evaluated.">
            <WizardRunPanel testIdPrefix="prune" layout={layout} onLayout={setLayout} name={form.name} namePlaceholder={defaultName} onName={(name) => change({ ...form, name })}
              nameError={shownIssues.name} formIssue={shownIssues.form} startError={startError} recipe={recipe} run={run} starting={starting} running={running}
              job={job} done={outcome !== null} onShowComparison={() => setActive(STEP.result)}>
              <Review form={form} />
              <Alert variant="light" color={note.color} title={note.title} data-testid="prune-run-note">{note.text}</Alert>
            </WizardRunPanel>
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

      <WizardNav active={active} runStep={STEP.run} beforeRun={STEP.targets} onStep={setActive} next={next} checking={checking} busy={running || starting} />
    </Stack>
  );
}
