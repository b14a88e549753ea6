import { Alert, Stack, Stepper, Table, Text, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import type { ErrorShape, QuantizePlan } from '../../preload/contract.ts';
import { WizardRunPanel } from '../components/WizardRunPanel.tsx';
import { WizardNav } from '../components/WizardNav.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';

import { ModelEvaluationFields } from '../components/ModelEvaluationFields.tsx';
import { RecoverFields } from '../components/RecoverFields.tsx';
import { unrecoverableReason } from '../../preload/recover.ts';
import { QuantizeMethodFields } from '../components/QuantizeMethodFields.tsx';
import { QuantizeResult } from '../components/QuantizeResult.tsx';
import { QuantizeWeightsTable } from '../components/QuantizeWeightsTable.tsx';
import { SensitivityPanel } from '../components/SensitivityPanel.tsx';
import { SizeEstimate } from '../components/SizeEstimate.tsx';
import { TrainCurves } from '../components/TrainCurves.tsx';
import { useApi } from '../hooks/useApi.ts';
import { useCall } from '../hooks/useCall.ts';
import { useJob, useJobStore } from '../hooks/useJobs.ts';
import { useRecipeWizard, type WizardSpec } from '../hooks/useRecipeWizard.ts';
import { toUiError } from '../lib/errors.ts';
import { baseName, formatBytes } from '../lib/format.ts';
import { applyTopK, buildQuantizeRecipe, buildSensitivityRecipe, DEFAULT_SENSITIVITY_SAMPLES, defaultQuantizeForm, firstStepWithIssues, invalidKeepPatterns, issuesForStep, methodOf, parseKeepPatterns, parsePrompts, planStep, quantizeFormFromRecipe, quantizeIssuesFromServer, sensitivityIssues, sensitivityOf, settingsLine, validateQuantizeForm, type QuantizeForm, type QuantizeIssues } from '../lib/quantize-form.ts';
import { href } from '../lib/route.ts';
import { liveCurve } from '../lib/train-curve.ts';
import { loadSensitivityRuns, rememberSensitivityRun, sensitivityKey, type SensitivityRun } from '../lib/sensitivity-memory.ts';
import { onAsync } from '../lib/async-handler.ts';

interface Props { path: string; jobId: string | null; experimentId: number | null; from?: number | null }

const STEP = { model: 0, method: 1, weights: 2, run: 3, result: 4 } as const;

function defaultName(form: QuantizeForm): string {
  const how = methodOf(form.method).weightOnly
    ? `${form.method.toUpperCase()} ${form.bits}-bit b${form.blockSize}${form.overrides.length ? ` +${form.overrides.length}×8` : ''}`
    : form.method === 'qat' ? `KD-QAT ${form.bits}-bit b${form.blockSize}${form.qatFreezeOv ? ' ov-freeze' : ''}`
    : form.method === 'fp16' ? 'FP16' : form.method === 'int8-dynamic' ? 'INT8 dynamic' : `INT8 static ${form.rangeMethod}`;
  return `Quantize ${baseName(form.modelPath.trim())} · ${how}`.slice(0, 200);
}

const METHOD_INTRO: Record<QuantizeForm['method'], string> = {
  rtn: 'Weight-only quantization: activations stay in float. RTN needs no calibration data.',
  gptq: 'Weight-only quantization with error compensation: GPTQ runs the original model on calibration text to learn how each layer\'s inputs use its weights.',
  fp16: 'Half precision: every float tensor in float16, the numerically sensitive ops kept in float32. No calibration.',
  'int8-dynamic': 'Int8 weights; activations are quantized at run time from their actual range, so no calibration is needed.',
  'int8-static': 'Int8 weights and activations: activation ranges are measured once on calibration text and fixed in the graph (QDQ).',
  qat: 'Quantization-aware training: the model is trained through 4- or 8-bit fake quantization to match its own float outputs (KD), then exported as MatMulNBits.',
};

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

function Review({ form, planBytes }: { form: QuantizeForm; planBytes: { before: number; after: number } | null }) {
  const keep = parseKeepPatterns(form.keepText);
  const method = methodOf(form.method);
  const rows: [string, ReactNode][] = [
    ['Model', <Text key="m" size="sm" ff="monospace" className="wrap-anywhere">{form.modelPath}</Text>],
    ['Method', method.name],
    ['Settings', settingsLine(form)],
  ];
  if (method.calibration) {
    rows.push(['Calibration', <Text key="c" size="sm" className="wrap-anywhere">{`${form.calibSamples} × ${form.calibLength} tokens, seed ${form.calibSeed}, from `}<Text span size="sm" ff="monospace">{form.calibText}</Text></Text>]);
  }
  if (method.weightOnly && form.overrides.length > 0) {
    rows.push(['At other bits', <Text key="o" size="sm" ff="monospace" className="wrap-anywhere">{form.overrides.map((o) => `${o.pattern} → ${o.bits}-bit`).join('  ·  ')}</Text>]);
  }
  if (form.method === 'qat') {
    rows.push(['Training text', <Text key="t" size="sm" ff="monospace" className="wrap-anywhere">{form.qatText}</Text>]);
  } else {
    rows.push(['Keep in float', keep.length === 0 ? 'no patterns' : <Text key="k" size="sm" ff="monospace" className="wrap-anywhere">{keep.join('  ·  ')}</Text>]);
  }
  rows.push(
    ['Evaluation', form.evaluate
      ? `perplexity (documents, L = ${form.window}, N = ${form.maxSamples}), ${parsePrompts(form.prompts).length} prompt(s)${form.speed ? ', speed' : ''}, footprint`
      : `${form.speed ? 'speed, ' : ''}footprint only`],
    ['Estimated size', planBytes ? `${formatBytes(planBytes.before)} → ${formatBytes(planBytes.after)}` : '—'],
  );
  return (
    <Table data-testid="quantize-review" verticalSpacing={6}>
      <Table.Tbody>
        {rows.map(([k, v]) => (
          <Table.Tr key={k}><Table.Td w={140}><Text size="sm" c="dimmed">{k}</Text></Table.Td><Table.Td><Text size="sm" component="div">{v}</Text></Table.Td></Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

const QUANTIZE_WIZARD: WizardSpec<QuantizeForm, QuantizeIssues> = {
  steps: STEP,
  initialForm: defaultQuantizeForm,
  formFromRecipe: quantizeFormFromRecipe,
  validate: validateQuantizeForm,
  issuesForStep,
  firstStepWithIssues,
  issuesFromServer: quantizeIssuesFromServer,
  buildRecipe: buildQuantizeRecipe,
  defaultName,
  href: href.quantize,
};

export function QuantizePage({ path, jobId, experimentId, from = null }: Props) {
  const api = useApi();
  const store = useJobStore();
  const {
    form, samples, active, setActive, issues: shownIssues, checking, modelError, startError, starting, stored, job, running,
    outcome, recipe, defaultName, change, pickSample, next, run, again, layout, setLayout,
  } = useRecipeWizard(QUANTIZE_WIZARD, { path, jobId, experimentId, from });
  // The per-layer sensitivity analysis of the Weights step: its own job, remembered by its inputs (this tab),
  // so that coming back to the step with the same settings shows it instead of measuring again.
  const [sensitivitySamples, setSensitivitySamples] = useState<number | string>(DEFAULT_SENSITIVITY_SAMPLES);
  const [sensitivityRuns, setSensitivityRuns] = useState<Record<string, SensitivityRun>>(loadSensitivityRuns);
  const currentSensitivityKey = useMemo(() => sensitivityKey(form, sensitivitySamples), [form, sensitivitySamples]);
  const sensitivityRun = sensitivityRuns[currentSensitivityKey] ?? null;
  const [sensitivityStarting, setSensitivityStarting] = useState(false);
  const [sensitivityProblems, setSensitivityProblems] = useState<string[]>([]);
  const [sensitivityError, setSensitivityError] = useState<ErrorShape | null>(null);
  const [topK, setTopK] = useState<number | string | undefined>(undefined);
  const sensitivityJob = useJob(sensitivityRun?.jobId ?? null, sensitivityRun?.experimentId ?? null);
  const sensitivity = useMemo(() => sensitivityOf(sensitivityJob?.result?.details), [sensitivityJob?.result]);

  // The plan (weights and size estimate) follows the settings, debounced; asked from the Method step on.
  const step = useMemo(() => planStep(form), [form]);
  const planKey = form.modelPath.trim() && step ? JSON.stringify({ path: form.modelPath.trim(), step }) : null;
  const [debouncedKey] = useDebouncedValue(planKey, 250);
  const wantPlan = active >= STEP.method && active <= STEP.run && debouncedKey !== null;
  const plan = useCall('quantize.plan', wantPlan ? (JSON.parse(debouncedKey!) as { path: string; step: NonNullable<typeof step> }) : null);
  const planLoading = plan.loading || (planKey !== debouncedKey && planKey !== null);
  // While a keep pattern is being typed and is not valid yet, the last plan stays on screen.
  const badKeep = invalidKeepPatterns(parseKeepPatterns(form.keepText))[0];
  const keepError = badKeep ? `"${badKeep.pattern}" is not a valid regular expression (${badKeep.message}).` : undefined;
  const [lastPlan, setLastPlan] = useState<QuantizePlan | null>(null);
  useEffect(() => { if (plan.data) setLastPlan(plan.data); }, [plan.data]);
  const shownPlan = plan.data ?? (badKeep && lastPlan && lastPlan.path === form.modelPath.trim() ? lastPlan : null);

  async function measureSensitivity() {
    setSensitivityError(null);
    const problems = sensitivityIssues(form, sensitivitySamples);
    setSensitivityProblems(problems);
    if (problems.length > 0) return;
    setSensitivityStarting(true);
    try {
      const recipe = buildSensitivityRecipe(form, sensitivitySamples);
      const started = await api.call('jobs.start', { recipe, name: recipe.name });
      store.track(started.jobId, started.experimentId);
      setSensitivityRuns((runs) => rememberSensitivityRun(runs, currentSensitivityKey, started));
    } catch (e) {
      setSensitivityError(toUiError(e));
    } finally {
      setSensitivityStarting(false);
    }
  }

  // KD-QAT trains: its loss and agreement curves stream while the job runs.
  const series = job?.series;
  const curve = useMemo(() => (form.method === 'qat' && series ? liveCurve(series) : []), [form.method, series]);

  const planBytes = plan.data ? { before: plan.data.bytesBefore, after: plan.data.bytesAfter } : null;
  const estimate = <SizeEstimate plan={shownPlan} loading={planLoading} error={plan.error} />;

  return (
    <Stack gap="md">
      <Stack gap={2}>
        <Title order={2}>Quantize</Title>
        <Text size="sm" c="dimmed">Store a model's weights in fewer bits, then measure the result against the original on the same text. Every run is kept in the history.</Text>
      </Stack>
      <Stepper active={active} onStepClick={(i) => { if (!running && !starting && i < active) setActive(i); }} allowNextStepsSelect={false} size="sm" data-testid="wizard">
        <Stepper.Step label="Model" description="What to quantize" data-testid="wizard-tab-model">
          <StepBody testId="wizard-step-model" title="Model" intro="The ONNX model, its tokenizer, and the text both models are evaluated on.">
            <ModelEvaluationFields form={form} issues={shownIssues} samples={samples} onChange={change} onSample={pickSample} testIdPrefix="quantize" />
            {modelError && <ErrorAlert error={modelError} testId="quantize-model-error" />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Method" description="How" data-testid="wizard-tab-method">
          <StepBody testId="wizard-step-method" title="Method" intro={METHOD_INTRO[form.method]}>
            <QuantizeMethodFields form={form} issues={shownIssues} onChange={change} />
            {estimate}
            <RecoverFields form={form} issues={shownIssues} onChange={change} unavailable={unrecoverableReason({ type: 'quantize', method: form.method, format: form.format })} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Weights" description="Which" data-testid="wizard-tab-weights">
          <StepBody testId="wizard-step-weights" title="Weights" intro="What the step will do with each weight. Keep sensitive ones (often the LM head) in full precision.">
            {estimate}
            {plan.error && <ErrorAlert error={plan.error} testId="plan-error" />}
            {methodOf(form.method).weightOnly ? (
              <SensitivityPanel form={form} onChange={change} plan={shownPlan} samples={sensitivitySamples} onSamples={setSensitivitySamples}
                onMeasure={onAsync(measureSensitivity)} starting={sensitivityStarting} problems={sensitivityProblems} startError={sensitivityError}
                job={sensitivityJob} result={sensitivity} onApply={(k, mode) => change(applyTopK(form, sensitivity?.rows ?? [], k, mode))}
                topK={topK} onTopK={setTopK} />
            ) : (
              <Text size="sm" c="dimmed" data-testid="sensitivity-unavailable">Per-layer sensitivity is measured for the block-wise methods (RTN, GPTQ), whose 8-bit overrides it fills in.</Text>
            )}
            {form.method === 'qat' && (
              <Text size="sm" c="dimmed" data-testid="qat-weights-note">KD-QAT trains and exports every linear weight listed here; keep patterns do not apply to it.</Text>
            )}
            {shownPlan && (
              <QuantizeWeightsTable plan={shownPlan} disabled={form.method === 'qat'} keepText={form.keepText} onKeepText={(keepText) => change({ ...form, keepText })}
                keepError={keepError} overrides={methodOf(form.method).weightOnly ? form.overrides : []} onOverrides={(overrides) => change({ ...form, overrides })} />
            )}
            {!shownPlan && !plan.error && keepError && <Alert color="red" variant="light">{keepError}</Alert>}
            {!shownPlan && !plan.error && !keepError && <Text size="sm" c="dimmed">Reading the model…</Text>}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Run" description="Quantize and evaluate" data-testid="wizard-tab-run">
          <StepBody testId="wizard-step-run" title="Run" intro="Check the settings, then run. The weights are quantized one by one, then the original and the result are evaluated.">
            <WizardRunPanel testIdPrefix="quantize" layout={layout} onLayout={setLayout} name={form.name} namePlaceholder={defaultName} onName={(name) => change({ ...form, name })}
              nameError={shownIssues.name} formIssue={shownIssues.form} startError={startError} recipe={recipe} run={run} starting={starting} running={running}
              job={job} done={outcome !== null} onShowComparison={() => setActive(STEP.result)}
              beside={curve.length > 0 ? <TrainCurves curve={curve} live={running} /> : null}>
              <Review form={form} planBytes={planBytes} />
            </WizardRunPanel>
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Result" description="Original vs result" data-testid="wizard-tab-result">
          <Stack gap="md" pt="md" data-testid="wizard-step-result">
            {outcome
              ? <QuantizeResult outcome={outcome} experimentId={job?.experimentId ?? stored?.id ?? experimentId} settings={settingsLine(form)} onAgain={again} />
              : <Text size="sm" c="dimmed">No result yet.</Text>}
          </Stack>
        </Stepper.Step>
      </Stepper>

      <WizardNav active={active} runStep={STEP.run} beforeRun={STEP.weights} onStep={setActive} next={next} checking={checking} busy={running || starting} />
    </Stack>
  );
}
