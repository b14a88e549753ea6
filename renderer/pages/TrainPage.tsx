import { Checkbox, Group, NumberInput, Paper, SegmentedControl, SimpleGrid, Stack, Stepper, Switch, Table, Text, Textarea, TextInput, Title } from '@mantine/core';
import { useMemo, type ReactNode } from 'react';
import { ClassificationReport } from '../components/ClassificationReport.tsx';
import { WizardRunPanel } from '../components/WizardRunPanel.tsx';
import { WizardNav } from '../components/WizardNav.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';

import { ModelEvaluationFields } from '../components/ModelEvaluationFields.tsx';
import { PathInput } from '../components/PathInput.tsx';
import { QuantizeResult } from '../components/QuantizeResult.tsx';
import { TrainCurves } from '../components/TrainCurves.tsx';
import { useCall } from '../hooks/useCall.ts';
import { useRecipeWizard, type WizardSpec } from '../hooks/useRecipeWizard.ts';
import { href } from '../lib/route.ts';
import { curveFigures, liveCurve, storedCurve } from '../lib/train-curve.ts';
import { buildTrainRecipe, defaultTrainForm, defaultTrainName, firstTrainStepWithIssues, ROLE_LABELS, ROLES, TRAIN_CARD, trainFormFromRecipe, trainIssuesForStep, trainIssuesFromServer, trainSettingsLine, validateTrainForm, warmupText, type TrainForm, type TrainIssues } from '../lib/train-form.ts';
import type { FreezeRole } from '../../preload/recipe.ts';

interface Props { path: string; jobId: string | null; experimentId: number | null; from?: number | null }

const STEP = { model: 0, method: 1, settings: 2, run: 3, result: 4 } as const;

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

interface FieldsProps { form: TrainForm; issues: TrainIssues; onChange: (f: TrainForm) => void }

/** Labelled data for an encoder classifier: the file, its columns (found by name when left empty) and the held-out share. */
function LabelledFields({ form, issues, onChange }: FieldsProps) {
  return (
    <Stack gap="md" data-testid="train-labelled">
      <PathInput label="Labelled data" description="TSV, CSV or JSONL with a text and a label column (two classes or more)."
        placeholder="/path/to/data.tsv" value={form.labelsPath} onChange={(v) => onChange({ ...form, labelsPath: v })} purpose="text" error={issues.labelsPath}
        testId="train-labels-path" />
      <SimpleGrid cols={{ base: 1, sm: 3 }}>
        <TextInput label="Text column" placeholder="sentence, text, content or message" value={form.textColumn}
          onChange={(e) => onChange({ ...form, textColumn: e.currentTarget.value })} error={issues.textColumn} data-testid="train-text-column" />
        <TextInput label="Label column" placeholder="label, labels, class or category" value={form.labelColumn}
          onChange={(e) => onChange({ ...form, labelColumn: e.currentTarget.value })} error={issues.labelColumn} data-testid="train-label-column" />
        <NumberInput label="Held out" description="share (below 1) or count, never trained on; original and result are scored on it" value={form.heldOutShare}
          onChange={(v) => onChange({ ...form, heldOutShare: v })} min={0.01} decimalScale={3} error={issues.heldOutShare} data-testid="train-held-out-share" />
      </SimpleGrid>
    </Stack>
  );
}

function DataFields({ form, issues, onChange, encoder }: FieldsProps & { encoder: boolean }) {
  const classify = form.objective === 'classify';
  return (
    <Paper withBorder radius="md" p="md">
      <Stack gap="md">
        <Stack gap={2} data-testid="train-card">
          <Text fw={700}>{TRAIN_CARD.title}</Text>
          <Text size="sm" c="dimmed">{TRAIN_CARD.summary}</Text>
        </Stack>
        {(encoder || classify) && (
          <SegmentedControl value={form.objective} onChange={(v) => onChange({ ...form, objective: v as TrainForm['objective'] })} data-testid="train-objective"
            data={[{ value: 'classify', label: 'Labelled data (classification)' }, { value: 'lm', label: 'Text (next-token)' }]} />
        )}
        {classify ? <LabelledFields form={form} issues={issues} onChange={onChange} /> : <>
        <PathInput label="Training text" description="A UTF-8 text file; paragraphs separated by blank lines are packed into sequences of T + 1 tokens. Best not the evaluation text."
          placeholder="/path/to/train.txt" value={form.calibText} onChange={(v) => onChange({ ...form, calibText: v })} purpose="text" error={issues.calibText}
          testId="train-text-path" />
        <Switch label="Held-out loss during training" description={`Measured on the evaluation text (${form.textPath.trim() || 'set on the Model step'}) at the start, every few steps and at the end.`}
          checked={form.heldOut} onChange={(e) => onChange({ ...form, heldOut: e.currentTarget.checked })} data-testid="train-heldout-toggle" />
        {form.heldOut && (
          <NumberInput label="Every (steps)" value={form.evalEvery} onChange={(v) => onChange({ ...form, evalEvery: v })} min={1} allowDecimal={false} w={200}
            error={issues.evalEvery} data-testid="train-eval-every" />
        )}
        </>}
      </Stack>
    </Paper>
  );
}

function SettingsFields({ form, issues, onChange }: FieldsProps) {
  const set = <K extends keyof TrainForm>(key: K, value: TrainForm[K]) => onChange({ ...form, [key]: value });
  const toggleRole = (role: FreezeRole, on: boolean) => set('freezeRoles', on ? [...form.freezeRoles, role] : form.freezeRoles.filter((r) => r !== role));
  return (
    <Paper withBorder radius="md" p="md">
      <Stack gap="md">
        <Group align="flex-end" gap="md">
          <SegmentedControl value={form.duration} onChange={(v) => set('duration', v as TrainForm['duration'])} data-testid="train-duration"
            data={[{ value: 'steps', label: 'Steps' }, { value: 'epochs', label: 'Epochs' }]} />
          {form.duration === 'steps'
            ? <NumberInput label="Optimizer steps" value={form.steps} onChange={(v) => set('steps', v)} min={1} allowDecimal={false} error={issues.steps} w={180} data-testid="train-steps" />
            : <NumberInput label="Passes over the text" value={form.epochs} onChange={(v) => set('epochs', v)} min={0.01} decimalScale={2} error={issues.epochs} w={180} data-testid="train-epochs" />}
        </Group>
        <SimpleGrid cols={{ base: 2, md: 4 }}>
          <NumberInput label="Batch B" value={form.batch} onChange={(v) => set('batch', v)} min={1} allowDecimal={false} error={issues.batch} data-testid="train-batch" />
          <NumberInput label="Length T (tokens)" value={form.length} onChange={(v) => set('length', v)} min={8} step={32} allowDecimal={false} error={issues.length} data-testid="train-length" />
          <NumberInput label="Accumulate" description="micro-batches per step" value={form.accumulate} onChange={(v) => set('accumulate', v)} min={1} allowDecimal={false}
            error={issues.accumulate} data-testid="train-accumulate" />
          <TextInput label="Learning rate" value={String(form.lr)} onChange={(e) => set('lr', e.currentTarget.value)} error={issues.lr} data-testid="train-lr" />
          <NumberInput label="Warmup (steps)" description={warmupText(form)} placeholder="default" value={form.warmup} onChange={(v) => set('warmup', v)} min={0}
            allowDecimal={false} error={issues.warmup} data-testid="train-warmup" />
          <TextInput label="Weight decay" value={String(form.weightDecay)} onChange={(e) => set('weightDecay', e.currentTarget.value)} error={issues.weightDecay} data-testid="train-weight-decay" />
          <TextInput label="Clip gradient norm" description="0 = no clipping" value={String(form.clipNorm)} onChange={(e) => set('clipNorm', e.currentTarget.value)}
            error={issues.clipNorm} data-testid="train-clip-norm" />
          <NumberInput label="Checkpoint every (steps)" value={form.checkpointEvery} onChange={(v) => set('checkpointEvery', v)} min={1} allowDecimal={false}
            error={issues.checkpointEvery} data-testid="train-checkpoint-every" />
        </SimpleGrid>
        <Stack gap={6}>
          <Text size="sm" fw={500}>Freeze</Text>
          <Text size="xs" c="dimmed">Frozen weights stay as they are. Freezing the attention output and value projections (o, v) is ov-freeze.</Text>
          <Group gap="md" data-testid="train-freeze-roles">
            {ROLES.map((role) => (
              <Checkbox key={role} label={ROLE_LABELS[role]} checked={form.freezeRoles.includes(role)} onChange={(e) => toggleRole(role, e.currentTarget.checked)}
                data-testid={`train-freeze-${role}`} />
            ))}
          </Group>
          <Textarea label="Patterns on weight names" description="One per line, with * and ? (e.g. *.layers.0.*)." autosize minRows={1} maxRows={4}
            value={form.freezePatterns} onChange={(e) => set('freezePatterns', e.currentTarget.value)} error={issues.freezePatterns} data-testid="train-freeze-patterns" />
        </Stack>
        <Switch label="Keep sparsity" description="Weights that are zero at the start stay zero: a pruned model stays pruned." checked={form.keepSparsity}
          onChange={(e) => set('keepSparsity', e.currentTarget.checked)} data-testid="train-keep-sparsity" />
        <NumberInput label="Seed (data order)" value={form.seed} onChange={(v) => set('seed', v)} min={0} allowDecimal={false} w={200} error={issues.seed} data-testid="train-seed" />
      </Stack>
    </Paper>
  );
}

function Review({ form }: { form: TrainForm }) {
  const rows: [string, ReactNode][] = [
    ['Model', <Text key="m" size="sm" ff="monospace" className="wrap-anywhere">{form.modelPath}</Text>],
    ...(form.objective === 'classify' ? [
      ['Labelled data', <Text key="t" size="sm" ff="monospace" className="wrap-anywhere">{form.labelsPath}</Text>],
      ['Settings', trainSettingsLine(form)],
      ['Evaluation', `accuracy and macro-F1 on the held-out ${form.heldOutShare}, original beside result`],
    ] satisfies [string, ReactNode][] : [
      ['Training text', <Text key="t" size="sm" ff="monospace" className="wrap-anywhere">{form.calibText}</Text>],
      ['Settings', trainSettingsLine(form)],
      ['Held-out loss', form.heldOut ? `every ${form.evalEvery} steps on the evaluation text` : 'not measured'],
      ['Evaluation', form.evaluate ? `perplexity (documents, L = ${form.window}, N = ${form.maxSamples}), original beside result${form.speed ? ', speed' : ''}` : 'size only'],
    ] satisfies [string, ReactNode][]),
  ];
  return (
    <Table data-testid="train-review" verticalSpacing={6}>
      <Table.Tbody>
        {rows.map(([k, v]) => (
          <Table.Tr key={k}><Table.Td w={140}><Text size="sm" c="dimmed">{k}</Text></Table.Td><Table.Td><Text size="sm" component="div">{v}</Text></Table.Td></Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** What the training did, in one sentence, for the comparison's heading. */
function resultSummary(details: unknown): string {
  const curve = storedCurve(details);
  const f = curve ? curveFigures(curve) : null;
  if (!curve || !f) return '';
  const first = curve[0].loss;
  const held = f.firstEvalLoss !== null && f.evalLoss !== null ? `; held-out loss ${f.firstEvalLoss.toFixed(3)} → ${f.evalLoss.toFixed(3)}` : '';
  return `${f.step} steps; training loss ${first.toFixed(3)} → ${f.loss.toFixed(3)}${held}.`;
}

const TRAIN_WIZARD: WizardSpec<TrainForm, TrainIssues> = {
  steps: STEP,
  initialForm: defaultTrainForm,
  formFromRecipe: trainFormFromRecipe,
  validate: validateTrainForm,
  issuesForStep: trainIssuesForStep,
  firstStepWithIssues: firstTrainStepWithIssues,
  issuesFromServer: trainIssuesFromServer,
  buildRecipe: buildTrainRecipe,
  defaultName: defaultTrainName,
  href: href.train,
};

export function TrainPage({ path, jobId, experimentId, from = null }: Props) {
  const {
    form, samples, active, setActive, issues: shownIssues, checking, modelError, startError, starting, stored, job, running,
    outcome, recipe, defaultName, change, pickSample, next, run, again, layout, setLayout,
  } = useRecipeWizard(TRAIN_WIZARD, { path, jobId, experimentId, from });
  const series = job?.series;
  const curve = useMemo(() => (series ? liveCurve(series) : stored ? storedCurve(stored.details) ?? [] : []), [series, stored]);
  const showCurves = job !== null || (stored !== null && curve.length > 0);
  // An encoder (from the model's inspection) is offered classification on labelled data.
  const model = form.modelPath.trim();
  const inspection = useCall('models.inspect', active === STEP.method && model ? { path: model } : null);
  const encoder = inspection.data?.kind === 'encoder';

  return (
    <Stack gap="md">
      <Stack gap={2}>
        <Title order={2}>Train</Title>
        <Text size="sm" c="dimmed">Fine-tune a model on your text — to recover quality after pruning or quantization, or to adapt it — then measure it against the original. Every run is kept in the history.</Text>
      </Stack>
      <Stepper active={active} onStepClick={(i) => { if (!running && !starting && i < active) setActive(i); }} allowNextStepsSelect={false} size="sm" data-testid="wizard">
        <Stepper.Step label="Model" description="What to train" data-testid="wizard-tab-model">
          <StepBody testId="wizard-step-model" title="Model" intro="The ONNX model, its tokenizer, and the text original and result are evaluated on.">
            <ModelEvaluationFields form={form} issues={shownIssues} samples={samples} onChange={change} onSample={pickSample} testIdPrefix="train" />
            {modelError && <ErrorAlert error={modelError} testId="train-model-error" />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Data" description="What to learn from" data-testid="wizard-tab-data">
          <StepBody testId="wizard-step-data" title="Data" intro="The text the model is trained on, and whether a held-out loss is followed during training.">
            <DataFields form={form} issues={shownIssues} onChange={change} encoder={encoder} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Settings" description="How long and how fast" data-testid="wizard-tab-settings">
          <StepBody testId="wizard-step-settings" title="Settings" intro="AdamW with linear warmup and cosine decay; the global gradient norm is clipped.">
            <SettingsFields form={form} issues={shownIssues} onChange={change} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Run" description="Train and evaluate" data-testid="wizard-tab-run">
          <StepBody testId="wizard-step-run" title="Run" intro="Check the settings, then run. The curves follow every step; a cancelled run keeps its checkpoint and can be resumed from the history.">
            <WizardRunPanel testIdPrefix="train" layout={layout} onLayout={setLayout} name={form.name} namePlaceholder={defaultName} onName={(name) => change({ ...form, name })}
              nameError={shownIssues.name} formIssue={shownIssues.form} startError={startError} recipe={recipe} run={run} starting={starting} running={running}
              job={job} done={outcome !== null} onShowComparison={() => setActive(STEP.result)}>
              <Review form={form} />
            </WizardRunPanel>
            {showCurves && <TrainCurves curve={curve} live={running} />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Result" description="Original vs result" data-testid="wizard-tab-result">
          <Stack gap="md" pt="md" data-testid="wizard-step-result">
            {outcome
              ? <QuantizeResult outcome={outcome} experimentId={job?.experimentId ?? stored?.id ?? experimentId} settings={trainSettingsLine(form)} onAgain={again}
                summary={resultSummary(outcome.details)} againLabel="Train again" />
              : <Text size="sm" c="dimmed">No result yet.</Text>}
            {outcome && <ClassificationReport details={outcome.details} />}
          </Stack>
        </Stepper.Step>
      </Stepper>

      <WizardNav active={active} runStep={STEP.run} beforeRun={STEP.settings} onStep={setActive} next={next} checking={checking} busy={running || starting} />
    </Stack>
  );
}
