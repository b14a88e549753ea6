/**
 * The Train wizard's form ⇄ a recipe with one train step (next-token fine-tuning). The model, tokenizer
 * and evaluation fields are the ones every compress wizard shares (recipe-form.ts); the training text is
 * the shared `calibText` field (the sample fills it with its calibration text, which does not overlap
 * the evaluation text), and the held-out loss is measured on the evaluation text when asked.
 */
import { TRAIN } from '../../preload/methods.ts';
import { DEFAULT_HELD_OUT, defaultWarmupSteps, FREEZE_ROLES, isFreezeRoleWord, Recipe, TrainStep, type FreezeRole, type RecipeInput, type TrainObjective } from '../../preload/recipe.ts';
import { addIssue, issuePathParts, issuesFromList, numberMessage, type Issues } from './form-issues.ts';
import {
  baseRecipe, buildEvaluation, defaultEvaluationPart, EVALUATION_FIELD_BY_PATH, evaluationPartFromRecipe, fileNameOf, parseLines, toNumber,
  type EvaluationFormPart,
} from './recipe-form.ts';

export interface TrainForm extends EvaluationFormPart {
  /** Next-token fine-tuning on a text, or an encoder classifier on labelled data. */
  objective: TrainObjective;
  /** The training text. */
  calibText: string;
  /** Classification: the labelled file (TSV, CSV or JSONL), its columns (empty: found by name) and the held-out share. */
  labelsPath: string;
  textColumn: string;
  labelColumn: string;
  heldOutShare: number | string;
  /** Measure the held-out loss on the evaluation text during training. */
  heldOut: boolean;
  evalEvery: number | string;
  duration: 'steps' | 'epochs';
  steps: number | string;
  epochs: number | string;
  batch: number | string;
  length: number | string;
  accumulate: number | string;
  lr: number | string;
  /** Empty: the default (about a tenth of the run, at most 100 steps). */
  warmup: number | string;
  weightDecay: number | string;
  clipNorm: number | string;
  freezeRoles: FreezeRole[];
  /** Glob patterns on weight names, one per line. */
  freezePatterns: string;
  keepSparsity: boolean;
  seed: number | string;
  checkpointEvery: number | string;
}

export type TrainField = keyof TrainForm | 'form';
export type TrainIssues = Issues<TrainField>;

/** The card the wizard shows for the step, from its description. */
export const TRAIN_CARD = { title: TRAIN.title, summary: TRAIN.summary, outputs: TRAIN.outputs } as const;

/** The roles as checkboxes: the recipe's names, with words for people. */
export const ROLE_LABELS: Readonly<Record<FreezeRole, string>> = {
  q: 'Query (q)', k: 'Key (k)', v: 'Value (v)', o: 'Attention output (o)', gate: 'MLP gate', up: 'MLP up', down: 'MLP down',
  norm: 'Norms', embedding: 'Embedding', lm_head: 'LM head',
};
export const ROLES: readonly FreezeRole[] = FREEZE_ROLES;

export function defaultTrainForm(modelPath = ''): TrainForm {
  const d = TrainStep.parse({ type: 'train', text: 'x', steps: 1 });
  return {
    ...defaultEvaluationPart(modelPath),
    speed: false,
    objective: 'lm',
    calibText: '',
    labelsPath: '',
    textColumn: '',
    labelColumn: '',
    heldOutShare: DEFAULT_HELD_OUT,
    heldOut: true,
    evalEvery: d.evalEvery,
    duration: 'steps',
    steps: 100,
    epochs: 1,
    batch: d.batch,
    length: d.length,
    accumulate: d.accumulate,
    lr: d.lr,
    warmup: '',
    weightDecay: d.weightDecay,
    clipNorm: d.clipNorm,
    freezeRoles: [],
    freezePatterns: '',
    keepSparsity: d.keepSparsity,
    seed: d.seed,
    checkpointEvery: d.checkpointEvery,
  };
}

type TrainStepInput = Extract<NonNullable<RecipeInput['steps']>[number], { type: 'train' }>;

/** The recipe's train step for the form. */
/** The labelled data of a classification form, as the train step and the accuracy section name it. */
function labelsOf(form: TrainForm): { file: string; textColumn?: string; labelColumn?: string; heldOut: number; seed: number } {
  return {
    file: form.labelsPath.trim(),
    ...(form.textColumn.trim() ? { textColumn: form.textColumn.trim() } : {}),
    ...(form.labelColumn.trim() ? { labelColumn: form.labelColumn.trim() } : {}),
    heldOut: toNumber(form.heldOutShare), seed: toNumber(form.seed),
  };
}

export function buildTrainStep(form: TrainForm): TrainStepInput {
  const warmup = typeof form.warmup === 'string' && form.warmup.trim() === '' ? {} : { warmup: toNumber(form.warmup) };
  if (form.objective === 'classify') {
    return {
      type: 'train', objective: 'classify', labels: labelsOf(form),
      ...(form.duration === 'steps' ? { steps: toNumber(form.steps) } : { epochs: toNumber(form.epochs) }),
      batch: toNumber(form.batch), length: toNumber(form.length), accumulate: toNumber(form.accumulate),
      lr: toNumber(form.lr), ...warmup, weightDecay: toNumber(form.weightDecay), clipNorm: toNumber(form.clipNorm),
      freeze: [...form.freezeRoles, ...parseLines(form.freezePatterns)], seed: toNumber(form.seed), checkpointEvery: toNumber(form.checkpointEvery),
    };
  }
  const heldOut = form.heldOut && form.textPath.trim() ? { evalText: form.textPath.trim(), evalEvery: toNumber(form.evalEvery) } : {};
  return {
    type: 'train', objective: 'lm', text: form.calibText.trim(),
    ...(form.duration === 'steps' ? { steps: toNumber(form.steps) } : { epochs: toNumber(form.epochs) }),
    batch: toNumber(form.batch), length: toNumber(form.length), accumulate: toNumber(form.accumulate),
    lr: toNumber(form.lr), ...warmup, weightDecay: toNumber(form.weightDecay), clipNorm: toNumber(form.clipNorm),
    freeze: [...form.freezeRoles, ...parseLines(form.freezePatterns)],
    keepSparsity: form.keepSparsity, ...heldOut, seed: toNumber(form.seed), checkpointEvery: toNumber(form.checkpointEvery),
  };
}

export function buildTrainRecipe(form: TrainForm): RecipeInput {
  // A classifier is compared on the held-out share of its labelled data: accuracy and macro-F1 (no text, no generations).
  const evaluation = form.objective === 'classify'
    ? { footprint: true, accuracy: { ...labelsOf(form), maxLength: toNumber(form.length) } }
    : buildEvaluation(form);
  return { ...baseRecipe(form), steps: [buildTrainStep(form)], evaluation };
}

const FIELD_BY_PATH: Record<string, TrainField> = {
  ...EVALUATION_FIELD_BY_PATH,
  'steps.0.text': 'calibText',
  'steps.0.labels.file': 'labelsPath',
  'steps.0.labels.textColumn': 'textColumn',
  'steps.0.labels.labelColumn': 'labelColumn',
  'steps.0.labels.heldOut': 'heldOutShare',
  'evaluation.accuracy': 'labelsPath',
  'steps.0.steps': 'steps',
  'steps.0.epochs': 'epochs',
  'steps.0.batch': 'batch',
  'steps.0.length': 'length',
  'steps.0.accumulate': 'accumulate',
  'steps.0.lr': 'lr',
  'steps.0.warmup': 'warmup',
  'steps.0.weightDecay': 'weightDecay',
  'steps.0.clipNorm': 'clipNorm',
  'steps.0.freeze': 'freezePatterns',
  'steps.0.evalText': 'textPath',
  'steps.0.evalEvery': 'evalEvery',
  'steps.0.seed': 'seed',
  'steps.0.checkpointEvery': 'checkpointEvery',
};

/** A recipe issue path → the form field. */
export function trainFieldForIssuePath(path: string | readonly PropertyKey[]): TrainField {
  const parts = issuePathParts(path);
  for (let n = parts.length; n > 0; n--) {
    const field = FIELD_BY_PATH[parts.slice(0, n).join('.')];
    if (field) return field;
  }
  return 'form';
}

function friendly(message: string, field: TrainField): string {
  const number = numberMessage(message);
  if (number) return number;
  if (field === 'calibText' && /path is required/i.test(message)) return 'Choose a UTF-8 text file to train on.';
  if (field === 'steps' && /exactly one/.test(message)) return 'Give the number of steps or of epochs.';
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/** Which wizard step holds each field: model, data, settings, run. */
export const STEP_FIELDS: readonly (readonly TrainField[])[] = [
  ['modelPath', 'tokenizerPath', 'textPath', 'window', 'maxSamples', 'prompts'],
  ['objective', 'calibText', 'heldOut', 'evalEvery', 'labelsPath', 'textColumn', 'labelColumn', 'heldOutShare'],
  ['duration', 'steps', 'epochs', 'batch', 'length', 'accumulate', 'lr', 'warmup', 'weightDecay', 'clipNorm', 'freezeRoles', 'freezePatterns', 'keepSparsity', 'seed', 'checkpointEvery'],
  ['name', 'form'],
];

/** Issues that block running, by field; empty when the form makes a valid recipe. */
export function validateTrainForm(form: TrainForm): TrainIssues {
  const issues: TrainIssues = {};
  if (!form.modelPath.trim()) addIssue(issues, 'modelPath', 'Choose the model file (.onnx).');
  if (!form.tokenizerPath.trim()) addIssue(issues, 'tokenizerPath', 'Training reads text, which needs the model\'s tokenizer (tokenizer.json).');
  if (form.objective === 'classify') {
    if (!form.labelsPath.trim()) addIssue(issues, 'labelsPath', 'Choose labelled data (TSV, CSV or JSONL with a text and a label column).');
  } else if ((form.evaluate || form.heldOut) && !form.textPath.trim()) addIssue(issues, 'textPath', 'Choose a UTF-8 text file to evaluate on (it is also the held-out text).');
  if (form.objective === 'classify') {
    // The labelled file's own held-out share is the evaluation.
  } else if (!form.calibText.trim()) addIssue(issues, 'calibText', 'Choose a UTF-8 text file to train on.');
  else if (form.calibText.trim() === form.textPath.trim() && (form.evaluate || form.heldOut)) {
    addIssue(issues, 'calibText', 'The training text is the evaluation text: the held-out loss and the comparison would measure memorisation. Choose another text.');
  }
  const words = parseLines(form.freezePatterns).filter((p) => isFreezeRoleWord(p) && !(FREEZE_ROLES as readonly string[]).includes(p));
  if (words.length > 0) addIssue(issues, 'freezePatterns', `"${words[0]}" is not a role; tick the roles above, and write patterns with a * or a dot (e.g. "*${words[0]}*").`);
  const parsed = Recipe.safeParse(buildTrainRecipe(form));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = trainFieldForIssuePath(issue.path);
      addIssue(issues, field, friendly(issue.message, field));
    }
  }
  return issues;
}

export function trainIssuesForStep(issues: TrainIssues, step: number): TrainIssues {
  const out: TrainIssues = {};
  for (const f of STEP_FIELDS[step] ?? []) if (issues[f]) out[f] = issues[f];
  return out;
}

export function firstTrainStepWithIssues(issues: TrainIssues): number {
  return STEP_FIELDS.findIndex((fields) => fields.some((f) => issues[f]));
}

export function trainIssuesFromServer(list: readonly { path: string; message: string }[]): TrainIssues {
  return issuesFromList(list, trainFieldForIssuePath, friendly);
}

/** A stored recipe with a train step back into the form (re-run, edit); null when it is not one. */
export function trainFormFromRecipe(recipe: unknown): TrainForm | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const step = parsed.data.steps.find((s) => s.type === TRAIN.type);
  if (!step || step.type !== 'train') return null;
  const form: TrainForm = { ...defaultTrainForm(parsed.data.model.path), ...evaluationPartFromRecipe(parsed.data) };
  form.objective = step.objective;
  form.calibText = step.text ?? '';
  if (step.labels) {
    form.labelsPath = step.labels.file;
    form.textColumn = step.labels.textColumn ?? '';
    form.labelColumn = step.labels.labelColumn ?? '';
    form.heldOutShare = step.labels.heldOut;
  }
  form.heldOut = step.evalText !== undefined;
  if (step.evalText !== undefined && !form.textPath) form.textPath = step.evalText;
  form.evalEvery = step.evalEvery;
  form.duration = step.steps !== undefined ? 'steps' : 'epochs';
  if (step.steps !== undefined) form.steps = step.steps;
  if (step.epochs !== undefined) form.epochs = step.epochs;
  form.batch = step.batch;
  form.length = step.length;
  form.accumulate = step.accumulate;
  form.lr = step.lr;
  form.warmup = step.warmup ?? '';
  form.weightDecay = step.weightDecay;
  form.clipNorm = step.clipNorm;
  form.freezeRoles = step.freeze.filter((f): f is FreezeRole => (FREEZE_ROLES as readonly string[]).includes(f));
  form.freezePatterns = step.freeze.filter((f) => !(FREEZE_ROLES as readonly string[]).includes(f)).join('\n');
  form.keepSparsity = step.keepSparsity;
  form.seed = step.seed;
  form.checkpointEvery = step.checkpointEvery;
  return form;
}

// ── words ───────────────────────────────────────────────────────────────────────────────────────────

/** The warmup the run will use, in words ("10 steps (default)"). */
export function warmupText(form: Pick<TrainForm, 'warmup' | 'duration' | 'steps'>): string {
  if (!(typeof form.warmup === 'string' && form.warmup.trim() === '')) return `${form.warmup} steps`;
  const steps = toNumber(form.steps);
  return form.duration === 'steps' && Number.isFinite(steps) ? `${defaultWarmupSteps(steps)} steps (default)` : 'about a tenth of the run (default)';
}

/** "200 steps · B 4 × T 128 · lr 3e-4 · frozen: embedding" — one line describing the run. */
export function trainSettingsLine(form: TrainForm): string {
  const how = form.duration === 'steps' ? `${form.steps} steps` : `${form.epochs} epoch(s)`;
  const freeze = [...form.freezeRoles, ...parseLines(form.freezePatterns)];
  const accumulate = toNumber(form.accumulate) > 1 ? ` × ${form.accumulate} accumulated` : '';
  const what = form.objective === 'classify' ? [`classification, ${form.heldOutShare} held out`] : [];
  return [...what, `${how}`, `B ${form.batch} × T ${form.length}${accumulate}`, `lr ${form.lr}, warmup ${warmupText(form)}`, `weight decay ${form.weightDecay}`,
    freeze.length ? `frozen: ${freeze.join(', ')}` : 'all float weights trained', form.objective === 'classify' ? null : form.keepSparsity ? 'zeros kept' : 'zeros may change']
    .filter((x): x is string => x !== null).join(' · ');
}

/** The job's default name: "Train model.onnx · 200 steps". */
export function defaultTrainName(form: TrainForm): string {
  const how = form.duration === 'steps' ? `${form.steps} steps` : `${form.epochs} epoch(s)`;
  return `Train ${fileNameOf(form.modelPath)} · ${how}`.slice(0, 200);
}
