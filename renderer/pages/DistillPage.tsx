import { Alert, Button, Chip, Group, Loader, NumberInput, Paper, SegmentedControl, SimpleGrid, Stack, Stepper, Switch, Table, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useMemo, type ReactNode } from 'react';
import type { CallParams, DistillPlan, ErrorShape } from '../../preload/contract.ts';
import { parseStepDetails } from '../../preload/methods.ts';
import { WizardRunPanel } from '../components/WizardRunPanel.tsx';
import { WizardNav } from '../components/WizardNav.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';

import { ModelEvaluationFields } from '../components/ModelEvaluationFields.tsx';
import { PathInput } from '../components/PathInput.tsx';
import { QuantizeResult } from '../components/QuantizeResult.tsx';
import { TrainCurves } from '../components/TrainCurves.tsx';
import { useCall } from '../hooks/useCall.ts';
import { useRecipeWizard, type WizardSpec } from '../hooks/useRecipeWizard.ts';
import { LORA_ROLES } from '../../preload/recipe.ts';
import {
  buildDistillRecipe, defaultDistillForm, defaultDistillName, DISTILL_CARD, distillFormFromRecipe, distillIssuesForStep, distillIssuesFromServer, distillSettingsLine, everyOtherBlock,
  firstDistillStepWithIssues, hiddenMapping, hiddenMappingText, LORA_HELP, LOSS_HELP, studentText, validateDistillForm, type DistillForm, type DistillIssues, type LoraRole,
} from '../lib/distill-form.ts';
import { formatBytes, formatInteger } from '../lib/format.ts';
import { href } from '../lib/route.ts';
import { curveFigures, liveCurve, storedCurve } from '../lib/train-curve.ts';

interface Props { path: string; jobId: string | null; experimentId: number | null; from?: number | null }

const STEP = { model: 0, student: 1, data: 2, settings: 3, run: 4, result: 5 } as const;

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

interface FieldsProps { form: DistillForm; issues: DistillIssues; onChange: (f: DistillForm) => void }

/** The student before it runs: its blocks, parameters and bytes beside the teacher's (distill.plan). */
function StudentSize({ plan, loading, error }: { plan: DistillPlan | null; loading: boolean; error: ErrorShape | null }) {
  if (loading) return <Group gap="xs"><Loader size="xs" /><Text size="sm" c="dimmed">Sizing the student…</Text></Group>;
  if (error) return <ErrorAlert error={error} testId="distill-plan-error" />;
  if (plan?.student) {
    const s = plan.student;
    return (
      <SimpleGrid cols={{ base: 2, md: 4 }} data-testid="distill-student-size">
        <Stack gap={0}><Text size="xs" c="dimmed">Student blocks</Text><Text size="sm" fw={600}>{s.blocks.join(', ')}</Text></Stack>
        <Stack gap={0}><Text size="xs" c="dimmed">Parameters</Text><Text size="sm" fw={600} data-testid="distill-student-params">{formatInteger(s.params)} of {formatInteger(s.teacherParams)} ({(100 * s.params / s.teacherParams).toFixed(0)} %)</Text></Stack>
        <Stack gap={0}><Text size="xs" c="dimmed">Model size</Text><Text size="sm" fw={600} data-testid="distill-student-bytes">{formatBytes(s.bytes)} of {formatBytes(s.teacherBytes)}</Text></Stack>
      </SimpleGrid>
    );
  }
  if (plan?.check) {
    const c = plan.check;
    return <Text size="sm" data-testid="distill-student-check">Same vocabulary as the teacher ({formatInteger(c.vocab)} tokens); the student has {c.studentBlocks} blocks, the teacher {c.teacherBlocks}.</Text>;
  }
  return null;
}

function StudentFields({ form, issues, onChange, teacherBlocks, plan }: FieldsProps & { teacherBlocks: number | null; plan: { data: DistillPlan | null; loading: boolean; error: ErrorShape | null } }) {
  const blocks = teacherBlocks ?? 0;
  return (
    <Paper withBorder radius="md" p="md">
      <Stack gap="md">
        <Stack gap={2} data-testid="distill-card">
          <Text fw={700}>{DISTILL_CARD.title}</Text>
          <Text size="sm" c="dimmed">{DISTILL_CARD.summary}</Text>
        </Stack>
        <SegmentedControl value={form.studentKind} onChange={(v) => onChange({ ...form, studentKind: v as DistillForm['studentKind'] })} data-testid="distill-student-kind"
          data={[{ value: 'blocks', label: "Some of the teacher's blocks" }, { value: 'model', label: 'A student model I bring' }]} />
        {form.studentKind === 'blocks' ? (
          <Stack gap="xs">
            <Text size="sm">The student starts as a copy of the teacher with only these blocks (DistilBERT&apos;s initialisation keeps every other one).</Text>
            {blocks > 0 ? (
              <Chip.Group multiple value={form.blocks.map(String)} onChange={(v) => onChange({ ...form, blocks: v.map(Number).sort((a, b) => a - b) })}>
                <Group gap="xs" data-testid="distill-blocks">
                  {Array.from({ length: blocks }, (_, i) => <Chip key={i} value={String(i)} size="sm" data-testid={`distill-block-${i}`}>block {i}</Chip>)}
                </Group>
              </Chip.Group>
            ) : <Text size="sm" c="dimmed">The teacher&apos;s blocks are read from the model…</Text>}
            <Group gap="xs">
              <Button size="xs" variant="light" disabled={blocks === 0} onClick={() => onChange({ ...form, blocks: everyOtherBlock(blocks) })} data-testid="distill-every-other">Every other block</Button>
            </Group>
            {issues.blocks && <Text size="xs" c="red" data-testid="distill-blocks-error">{issues.blocks}</Text>}
          </Stack>
        ) : (
          <PathInput label="Student model" description="An ONNX decoder with the teacher's tokenizer; its vocabulary is checked." placeholder="/path/to/student.onnx"
            value={form.studentPath} onChange={(v) => onChange({ ...form, studentPath: v })} purpose="model" error={issues.studentPath} testId="distill-student-path" />
        )}
        <StudentSize plan={plan.data} loading={plan.loading} error={plan.error} />
      </Stack>
    </Paper>
  );
}

function DataFields({ form, issues, onChange, plan }: FieldsProps & { plan: { data: DistillPlan | null; loading: boolean } }) {
  const overlap = plan.data?.overlap ?? null;
  return (
    <Paper withBorder radius="md" p="md">
      <Stack gap="md">
        <PathInput label="Training text" description="A UTF-8 text file; paragraphs separated by blank lines are packed into sequences of T + 1 tokens. It must not hold the evaluation text."
          placeholder="/path/to/train.txt" value={form.calibText} onChange={(v) => onChange({ ...form, calibText: v })} purpose="text" error={issues.calibText}
          testId="distill-text-path" />
        {plan.loading && form.calibText.trim() && form.textPath.trim() && <Group gap="xs"><Loader size="xs" /><Text size="sm" c="dimmed">Comparing the texts…</Text></Group>}
        {overlap && !plan.loading && (plan.data!.warnings.length > 0
          ? <Alert color="orange" variant="light" title="The evaluation text is inside the training text" data-testid="distill-overlap-warning">{plan.data!.warnings.join(' ')}</Alert>
          : <Text size="sm" c="green" data-testid="distill-overlap-ok">No paragraph of the evaluation text ({formatInteger(overlap.evalParagraphs)} compared) is in the training text.</Text>)}
        <Switch label="Held-out loss and agreement during training" description={`Measured on the evaluation text (${form.textPath.trim() || 'set on the Teacher step'}) at the start, every few steps and at the end.`}
          checked={form.heldOut} onChange={(e) => onChange({ ...form, heldOut: e.currentTarget.checked })} data-testid="distill-heldout-toggle" />
        {form.heldOut && (
          <NumberInput label="Every (steps)" value={form.evalEvery} onChange={(v) => onChange({ ...form, evalEvery: v })} min={1} allowDecimal={false} w={200}
            error={issues.evalEvery} data-testid="distill-eval-every" />
        )}
      </Stack>
    </Paper>
  );
}

/** Whether a rank-like or weight-like field is set to something other than off (empty or 0). */
const isOn = (v: number | string): boolean => String(v).trim() !== '' && Number(v) !== 0;

function SettingsFields({ form, issues, onChange, teacherBlocks, studentBlocks }: FieldsProps & { teacherBlocks: number | null; studentBlocks: number | null }) {
  const set = <K extends keyof DistillForm>(key: K, value: DistillForm[K]) => onChange({ ...form, [key]: value });
  const hiddenOn = isOn(form.hiddenWeight);
  const loraOn = isOn(form.loraRank);
  return (
    <Paper withBorder radius="md" p="md">
      <Stack gap="md">
        <Title order={5}>Loss</Title>
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <TextInput label="Temperature T" description={LOSS_HELP.temperature} value={String(form.temperature)} onChange={(e) => set('temperature', e.currentTarget.value)}
            error={issues.temperature} data-testid="distill-temperature" />
          <TextInput label="α (weight of the teacher)" description={LOSS_HELP.alpha} value={String(form.alpha)} onChange={(e) => set('alpha', e.currentTarget.value)}
            error={issues.alpha} data-testid="distill-alpha" />
        </SimpleGrid>
        <Switch label="Reverse KL" description={LOSS_HELP.reverse} checked={form.reverse} onChange={(e) => set('reverse', e.currentTarget.checked)} data-testid="distill-reverse" />
        <Group align="flex-end" gap="md">
          <Stack gap={4}>
            <Text size="sm" fw={500}>Teacher signal</Text>
            <Text size="xs" c="dimmed" maw={520}>{LOSS_HELP.signal}</Text>
            <SegmentedControl value={form.signal} onChange={(v) => set('signal', v as DistillForm['signal'])} data-testid="distill-signal"
              data={[{ value: 'logits', label: 'Logits every step' }, { value: 'topk', label: 'Top-k cache' }]} />
          </Stack>
          {form.signal === 'topk' && <NumberInput label="k" value={form.topk} onChange={(v) => set('topk', v)} min={1} allowDecimal={false} w={120} error={issues.topk} data-testid="distill-topk" />}
        </Group>
        <Title order={5}>Hidden states</Title>
        <TextInput label="Hidden-state weight β" description={LOSS_HELP.hidden} placeholder="off" value={String(form.hiddenWeight)} maw={520}
          onChange={(e) => set('hiddenWeight', e.currentTarget.value)} error={issues.hiddenWeight} data-testid="distill-hidden-weight" />
        {hiddenOn && (
          <Text size="xs" c="dimmed" data-testid="distill-hidden-mapping">
            Block mapping: {hiddenMappingText(hiddenMapping(form, teacherBlocks, studentBlocks), form)}
          </Text>
        )}
        <Title order={5}>Schedule</Title>
        <Group align="flex-end" gap="md">
          <SegmentedControl value={form.duration} onChange={(v) => set('duration', v as DistillForm['duration'])} data-testid="distill-duration"
            data={[{ value: 'steps', label: 'Steps' }, { value: 'epochs', label: 'Epochs' }]} />
          {form.duration === 'steps'
            ? <NumberInput label="Optimizer steps" value={form.steps} onChange={(v) => set('steps', v)} min={1} allowDecimal={false} error={issues.steps} w={180} data-testid="distill-steps" />
            : <NumberInput label="Passes over the text" value={form.epochs} onChange={(v) => set('epochs', v)} min={0.01} decimalScale={2} error={issues.epochs} w={180} data-testid="distill-epochs" />}
        </Group>
        <SimpleGrid cols={{ base: 2, md: 4 }}>
          <NumberInput label="Batch B" value={form.batch} onChange={(v) => set('batch', v)} min={1} allowDecimal={false} error={issues.batch} data-testid="distill-batch" />
          <NumberInput label="Length T (tokens)" value={form.length} onChange={(v) => set('length', v)} min={8} step={32} allowDecimal={false} error={issues.length} data-testid="distill-length" />
          <TextInput label="Learning rate" value={String(form.lr)} onChange={(e) => set('lr', e.currentTarget.value)} error={issues.lr} data-testid="distill-lr" />
          <NumberInput label="Warmup (steps)" placeholder="default" value={form.warmup} onChange={(v) => set('warmup', v)} min={0} allowDecimal={false} error={issues.warmup} data-testid="distill-warmup" />
          <NumberInput label="Checkpoint every (steps)" value={form.checkpointEvery} onChange={(v) => set('checkpointEvery', v)} min={1} allowDecimal={false}
            error={issues.checkpointEvery} data-testid="distill-checkpoint-every" />
          <NumberInput label="Seed (data order)" value={form.seed} onChange={(v) => set('seed', v)} min={0} allowDecimal={false} error={issues.seed} data-testid="distill-seed" />
        </SimpleGrid>
        <Title order={5}>LoRA adapters</Title>
        <Group align="flex-start" gap="md">
          <NumberInput label="Rank r" description={LORA_HELP.rank} placeholder="off" value={form.loraRank} onChange={(v) => set('loraRank', v)} maw={360}
            min={0} allowDecimal={false} error={issues.loraRank} data-testid="distill-lora-rank" />
          {loraOn && (
            <TextInput label="α" description={LORA_HELP.alpha} value={String(form.loraAlpha)} onChange={(e) => set('loraAlpha', e.currentTarget.value)} maw={360}
              error={issues.loraAlpha} data-testid="distill-lora-alpha" />
          )}
          {loraOn && (
            <TextInput label="Dropout" description={LORA_HELP.dropout} placeholder="0" value={String(form.loraDropout)} onChange={(e) => set('loraDropout', e.currentTarget.value)} maw={360}
              error={issues.loraDropout} data-testid="distill-lora-dropout" />
          )}
        </Group>
        {loraOn && (
          <Stack gap={4}>
            <Text size="sm" fw={500}>Adapted projections</Text>
            <Text size="xs" c="dimmed">{LORA_HELP.roles}</Text>
            <Chip.Group multiple value={form.loraRoles} onChange={(v) => set('loraRoles', LORA_ROLES.filter((r) => v.includes(r)) as LoraRole[])}>
              <Group gap="xs" data-testid="distill-lora-roles">
                {LORA_ROLES.map((r) => <Chip key={r} value={r} size="sm" data-testid={`distill-lora-role-${r}`}>{r}</Chip>)}
              </Group>
            </Chip.Group>
            {issues.loraRoles && <Text size="xs" c="red" data-testid="distill-lora-roles-error">{issues.loraRoles}</Text>}
          </Stack>
        )}
      </Stack>
    </Paper>
  );
}

function Review({ form }: { form: DistillForm }) {
  const rows: [string, ReactNode][] = [
    ['Teacher', <Text key="m" size="sm" ff="monospace" className="wrap-anywhere">{form.modelPath}</Text>],
    ['Student', studentText(form)],
    ['Training text', <Text key="t" size="sm" ff="monospace" className="wrap-anywhere">{form.calibText}</Text>],
    ['Settings', distillSettingsLine(form)],
    ['Held-out', form.heldOut ? `loss and agreement every ${form.evalEvery} steps on the evaluation text` : 'not measured'],
    ['Evaluation', form.evaluate ? `perplexity (documents, L = ${form.window}, N = ${form.maxSamples}), teacher beside student${form.speed ? ', speed' : ''}` : 'size only'],
  ];
  return (
    <Table data-testid="distill-review" verticalSpacing={6}>
      <Table.Tbody>
        {rows.map(([k, v]) => (
          <Table.Tr key={k}><Table.Td w={140}><Text size="sm" c="dimmed">{k}</Text></Table.Td><Table.Td><Text size="sm" component="div">{v}</Text></Table.Td></Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** What the distillation did, in one sentence, for the comparison's heading. */
function resultSummary(details: unknown): string {
  const d = parseStepDetails(details).find((s) => s.key === 'distill');
  const curve = storedCurve(details);
  const f = curve ? curveFigures(curve) : null;
  if (!d || d.key !== 'distill' || !curve || !f) return '';
  const pct = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(1)} %`);
  const agree = d.agreementAfter !== undefined ? `; teacher–student agreement ${pct(d.agreementBefore)} → ${pct(d.agreementAfter)}` : '';
  return `Student of ${d.student.blocks} blocks (${formatInteger(d.student.parameters)} parameters) from a teacher of ${d.teacher.blocks} (${formatInteger(d.teacher.parameters)}); ${f.step} steps; loss ${curve[0].loss.toFixed(3)} → ${f.loss.toFixed(3)}${agree}.`;
}

const DISTILL_WIZARD: WizardSpec<DistillForm, DistillIssues> = {
  steps: { model: STEP.model, method: STEP.student, run: STEP.run, result: STEP.result },
  initialForm: defaultDistillForm,
  formFromRecipe: distillFormFromRecipe,
  validate: validateDistillForm,
  issuesForStep: distillIssuesForStep,
  firstStepWithIssues: firstDistillStepWithIssues,
  issuesFromServer: distillIssuesFromServer,
  buildRecipe: buildDistillRecipe,
  defaultName: defaultDistillName,
  href: href.distill,
};

export function DistillPage({ path, jobId, experimentId, from = null }: Props) {
  const {
    form, samples, active, setActive, issues: shownIssues, checking, modelError, startError, starting, stored, job, running,
    outcome, recipe, defaultName, change, pickSample, next, run, again, layout, setLayout,
  } = useRecipeWizard(DISTILL_WIZARD, { path, jobId, experimentId, from });

  // The teacher's blocks for the picker, from the model's inspection (read once the teacher is chosen).
  const teacher = form.modelPath.trim();
  const inspection = useCall('models.inspect', active >= STEP.student && active <= STEP.settings && teacher ? { path: teacher } : null);
  const teacherBlocks = inspection.data ? (inspection.data.architecture?.blocks.length ?? inspection.data.decoder?.layers ?? null) : null;

  // The student's size and the overlap of the texts before running (distill.plan), debounced.
  const planParams = useMemo((): CallParams<'distill.plan'> | null => {
    if (!teacher) return null;
    const student = form.studentKind === 'blocks' ? (form.blocks.length ? { blocks: form.blocks } : null) : (form.studentPath.trim() ? { student: form.studentPath.trim() } : null);
    if (!student) return null;
    const texts = active === STEP.data && form.calibText.trim() && form.textPath.trim() ? { text: form.calibText.trim(), evalText: form.textPath.trim() } : {};
    return { teacher, ...student, ...(form.tokenizerPath.trim() ? { tokenizer: form.tokenizerPath.trim() } : {}), ...texts };
  }, [teacher, form.studentKind, form.blocks, form.studentPath, form.tokenizerPath, form.calibText, form.textPath, active]);
  const planKey = planParams ? JSON.stringify(planParams) : null;
  const [debouncedKey] = useDebouncedValue(planKey, 250);
  const plan = useCall('distill.plan', active >= STEP.student && active <= STEP.settings && debouncedKey !== null ? (JSON.parse(debouncedKey) as CallParams<'distill.plan'>) : null);
  const studentBlocks = plan.data?.student?.blocks.length ?? plan.data?.check?.studentBlocks ?? null;
  const planLoading = plan.loading || (planKey !== debouncedKey && planKey !== null);

  const series = job?.series;
  const curve = useMemo(() => (series ? liveCurve(series) : stored ? storedCurve(stored.details) ?? [] : []), [series, stored]);
  const showCurves = job !== null || (stored !== null && curve.length > 0);

  return (
    <Stack gap="md">
      <Stack gap={2}>
        <Title order={2}>Distill</Title>
        <Text size="sm" c="dimmed">Train a smaller student to imitate a teacher — some of the teacher&apos;s blocks, or a model you bring — then compare them. Every run is kept in the history.</Text>
      </Stack>
      <Stepper active={active} onStepClick={(i) => { if (!running && !starting && i < active) setActive(i); }} allowNextStepsSelect={false} size="sm" data-testid="wizard">
        <Stepper.Step label="Teacher" description="What to learn from" data-testid="wizard-tab-model">
          <StepBody testId="wizard-step-model" title="Teacher" intro="The teacher ONNX model, its tokenizer, and the text teacher and student are evaluated on.">
            <ModelEvaluationFields form={form} issues={shownIssues} samples={samples} onChange={change} onSample={pickSample} testIdPrefix="distill" />
            {modelError && <ErrorAlert error={modelError} testId="distill-model-error" />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Student" description="What learns" data-testid="wizard-tab-student">
          <StepBody testId="wizard-step-student" title="Student" intro="The student is trained to match the teacher's next-token distribution; its size is shown before anything runs.">
            <StudentFields form={form} issues={shownIssues} onChange={change} teacherBlocks={teacherBlocks} plan={{ data: plan.data, loading: planLoading, error: plan.error }} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Data" description="The text" data-testid="wizard-tab-data">
          <StepBody testId="wizard-step-data" title="Data" intro="The text the student learns on; it is checked against the evaluation text so the comparison stays honest.">
            <DataFields form={form} issues={shownIssues} onChange={change} plan={{ data: plan.data, loading: planLoading }} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Loss and schedule" description="How it learns" data-testid="wizard-tab-settings">
          <StepBody testId="wizard-step-settings" title="Loss and schedule" intro="α · KL(teacher ‖ student) · T² + (1 − α) · cross-entropy; AdamW with warmup and cosine decay.">
            <SettingsFields form={form} issues={shownIssues} onChange={change} teacherBlocks={teacherBlocks} studentBlocks={studentBlocks} />
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Run" description="Distil and evaluate" data-testid="wizard-tab-run">
          <StepBody testId="wizard-step-run" title="Run" intro="Check the settings, then run. The curves follow every step; a cancelled run keeps its checkpoint and can be resumed from the history.">
            <WizardRunPanel testIdPrefix="distill" layout={layout} onLayout={setLayout} name={form.name} namePlaceholder={defaultName} onName={(name) => change({ ...form, name })}
              nameError={shownIssues.name} formIssue={shownIssues.form} startError={startError} recipe={recipe} run={run} starting={starting} running={running}
              job={job} done={outcome !== null} onShowComparison={() => setActive(STEP.result)}>
              <Review form={form} />
            </WizardRunPanel>
            {showCurves && <TrainCurves curve={curve} live={running} />}
          </StepBody>
        </Stepper.Step>
        <Stepper.Step label="Result" description="Teacher vs student" data-testid="wizard-tab-result">
          <Stack gap="md" pt="md" data-testid="wizard-step-result">
            {outcome
              ? <QuantizeResult outcome={outcome} experimentId={job?.experimentId ?? stored?.id ?? experimentId} settings={distillSettingsLine(form)} onAgain={again}
                summary={resultSummary(outcome.details)} againLabel="Distil again" />
              : <Text size="sm" c="dimmed">No result yet.</Text>}
          </Stack>
        </Stepper.Step>
      </Stepper>

      <WizardNav active={active} runStep={STEP.run} beforeRun={STEP.settings} onStep={setActive} next={next} checking={checking} busy={running || starting} />
    </Stack>
  );
}
