/**
 * The Distill wizard's form ⇄ a recipe whose model is the teacher and whose one step distils a student
 * from it. The model, tokenizer and evaluation fields are the ones every compress wizard shares
 * (recipe-form.ts; the teacher is the model, compared with the student afterwards); the training text is
 * the shared `calibText` field (the sample fills it with its calibration text, which does not overlap the
 * evaluation text), and the held-out loss and agreement are measured on the evaluation text when asked.
 */
import { DISTILL } from '../../preload/methods.ts';
import { defaultWarmupSteps, DistillStep, LoraConfig, Recipe, type LORA_ROLES, type RecipeInput } from '../../preload/recipe.ts';
import { addIssue, issuePathParts, issuesFromList, numberMessage, type Issues } from './form-issues.ts';
import {
  baseRecipe, buildEvaluation, defaultEvaluationPart, EVALUATION_FIELD_BY_PATH, evaluationPartFromRecipe, fileNameOf, toNumber,
  type EvaluationFormPart,
} from './recipe-form.ts';

export interface DistillForm extends EvaluationFormPart {
  /** 'blocks': some of the teacher's blocks; 'model': a student model the user brings. */
  studentKind: 'blocks' | 'model';
  /** The teacher's blocks kept, ascending. */
  blocks: number[];
  studentPath: string;
  /** The training text. */
  calibText: string;
  /** Measure the held-out loss and the agreement on the evaluation text during training. */
  heldOut: boolean;
  evalEvery: number | string;
  temperature: number | string;
  alpha: number | string;
  reverse: boolean;
  /** 'logits': the teacher runs every step; 'topk': its top k are cached once. */
  signal: 'logits' | 'topk';
  topk: number | string;
  duration: 'steps' | 'epochs';
  steps: number | string;
  epochs: number | string;
  batch: number | string;
  length: number | string;
  lr: number | string;
  /** Empty: the default (about a tenth of the run, at most 100 steps). */
  warmup: number | string;
  seed: number | string;
  checkpointEvery: number | string;
  /** Weight β of the hidden-state loss (each student block's output pulled towards its teacher block's); empty or 0: off. */
  hiddenWeight: number | string;
  /** LoRA adapters of this rank on `loraRoles` instead of training every weight; empty or 0: off. */
  loraRank: number | string;
  /** LoRA's α: the adapters' update is scaled by α / rank. */
  loraAlpha: number | string;
  /** The projections that get adapters (LORA_ROLES). */
  loraRoles: LoraRole[];
  /** Dropout probability on the adapters' input while training, 0 ≤ p < 1; empty or 0: none. */
  loraDropout: number | string;
}

export type LoraRole = (typeof LORA_ROLES)[number];

export type DistillField = keyof DistillForm | 'form';
export type DistillIssues = Issues<DistillField>;

/** The card the wizard shows for the step, from its description. */
export const DISTILL_CARD = { title: DISTILL.title, summary: DISTILL.summary, outputs: DISTILL.outputs } as const;

/** One line each on the loss settings, for people. */
export const LOSS_HELP = {
  temperature: 'T softens both distributions before they are compared: above 1 the student also learns which wrong tokens the teacher finds likely (the KL term is scaled by T²).',
  alpha: "α weighs matching the teacher; 1 − α weighs predicting the text's own next tokens (cross-entropy).",
  reverse: "Reverse KL (student ‖ teacher) makes the student concentrate on the teacher's main choices instead of spreading over all of them (MiniLLM).",
  signal: "The teacher's logits every step, or its top k probabilities cached on disk once: cheaper epochs, a small error in the loss.",
  hidden: "β adds a mean-squared error pulling each student block's output towards its teacher block's (TinyBERT); 0 or empty is off, and it needs the teacher's logits every step.",
} as const;

/** One line each on the LoRA settings, for people. */
export const LORA_HELP = {
  rank: 'Train small rank-r adapters beside the chosen weights instead of every weight, merged in at the end; empty or 0 trains every weight.',
  alpha: 'α scales the adapters\' update by α / rank: a larger α makes each step change the model more.',
  roles: 'The projections that get adapters: attention q, k, v, o (the default), a fused qkv, and the MLP gate, up and down.',
  dropout: 'Each training step drops this share of the adapters\' input at random (0 to below 1, e.g. 0.05); none in evaluation or in the merged model. Empty or 0: no dropout.',
} as const;

/** The LoRA settings the schema fills in when only a rank is given. */
const LORA_DEFAULTS = LoraConfig.parse({ rank: 1 });

/**
 * Which teacher block each student block is pulled towards by the hidden-state loss (main/engine/distill/hidden.ts):
 * a student of kept blocks matches the blocks it was copied from; a student of its own, the uniform map
 * round((j + 1) · L_t / L_s) − 1. Null when the sizes are not known yet.
 */
export function hiddenMapping(form: Pick<DistillForm, 'studentKind' | 'blocks'>, teacherBlocks: number | null, studentBlocks: number | null): { student: number; teacher: number }[] | null {
  if (form.studentKind === 'blocks') return form.blocks.length ? [...form.blocks].sort((a, b) => a - b).map((teacher, student) => ({ student, teacher })) : null;
  if (!teacherBlocks || !studentBlocks) return null;
  return Array.from({ length: studentBlocks }, (_, j) => ({ student: j, teacher: Math.max(0, Math.round(((j + 1) * teacherBlocks) / studentBlocks) - 1) }));
}

/** "student 0 ← teacher 0 · 1 ← 2 · 2 ← 4", or how the map is chosen while the sizes are unknown. */
export function hiddenMappingText(mapping: readonly { student: number; teacher: number }[] | null, form: Pick<DistillForm, 'studentKind'>): string {
  if (!mapping) return form.studentKind === 'blocks' ? 'Each student block matches the teacher block it was copied from.' : 'Student block j matches teacher block round((j + 1) · teacher blocks / student blocks) − 1.';
  return mapping.map((m, i) => (i === 0 ? `student ${m.student} ← teacher ${m.teacher}` : `${m.student} ← ${m.teacher}`)).join(' · ');
}

/** DistilBERT's initialisation: every other block of a teacher with `n` blocks (0, 2, 4, …). */
export function everyOtherBlock(n: number): number[] {
  return Array.from({ length: Math.ceil(n / 2) }, (_, i) => 2 * i);
}

export function defaultDistillForm(modelPath = ''): DistillForm {
  const d = DistillStep.parse({ type: 'distill', student: { blocks: [0] }, data: { text: 'x' }, schedule: { steps: 1 } });
  return {
    ...defaultEvaluationPart(modelPath),
    speed: false,
    studentKind: 'blocks',
    blocks: [],
    studentPath: '',
    calibText: '',
    heldOut: true,
    evalEvery: d.schedule.evalEvery,
    temperature: d.loss.temperature,
    alpha: d.loss.alpha,
    reverse: d.loss.reverse,
    signal: 'logits',
    topk: 32,
    duration: 'steps',
    steps: 100,
    epochs: 1,
    batch: d.data.batch,
    length: d.data.length,
    lr: d.schedule.lr,
    warmup: '',
    seed: d.schedule.seed,
    checkpointEvery: d.schedule.checkpointEvery,
    hiddenWeight: '',
    loraRank: '',
    loraAlpha: LORA_DEFAULTS.alpha,
    loraRoles: [...LORA_DEFAULTS.roles],
    loraDropout: '',
  };
}

const blank = (v: number | string): boolean => typeof v === 'string' && v.trim() === '';

type DistillStepInput = Extract<NonNullable<RecipeInput['steps']>[number], { type: 'distill' }>;

/** The recipe's distill step for the form (the teacher is the recipe's model). */
export function buildDistillStep(form: DistillForm): DistillStepInput {
  const warmup = typeof form.warmup === 'string' && form.warmup.trim() === '' ? {} : { warmup: toNumber(form.warmup) };
  const heldOut = form.heldOut && form.textPath.trim() ? { evalText: form.textPath.trim() } : {};
  const rank = blank(form.loraRank) ? 0 : toNumber(form.loraRank);
  const hidden = blank(form.hiddenWeight) ? 0 : toNumber(form.hiddenWeight);
  const dropout = blank(form.loraDropout) ? 0 : toNumber(form.loraDropout);
  return {
    type: 'distill',
    student: form.studentKind === 'blocks' ? { blocks: [...form.blocks].sort((a, b) => a - b) } : { model: form.studentPath.trim() },
    data: { text: form.calibText.trim(), ...heldOut, batch: toNumber(form.batch), length: toNumber(form.length) },
    loss: { temperature: toNumber(form.temperature), alpha: toNumber(form.alpha), reverse: form.reverse, hidden },
    teacherSignal: form.signal === 'topk' ? { kind: 'topk', k: toNumber(form.topk) } : { kind: 'logits' },
    schedule: {
      ...(form.duration === 'steps' ? { steps: toNumber(form.steps) } : { epochs: toNumber(form.epochs) }),
      lr: toNumber(form.lr), ...warmup, evalEvery: toNumber(form.evalEvery), seed: toNumber(form.seed), checkpointEvery: toNumber(form.checkpointEvery),
    },
    ...(rank !== 0 ? { lora: { rank, alpha: blank(form.loraAlpha) ? LORA_DEFAULTS.alpha : toNumber(form.loraAlpha), roles: [...form.loraRoles], ...(dropout !== 0 ? { dropout } : {}) } } : {}),
  };
}

export function buildDistillRecipe(form: DistillForm): RecipeInput {
  return { ...baseRecipe(form), steps: [buildDistillStep(form)], evaluation: buildEvaluation(form) };
}

const FIELD_BY_PATH: Record<string, DistillField> = {
  ...EVALUATION_FIELD_BY_PATH,
  'steps.0.student': 'blocks',
  'steps.0.student.blocks': 'blocks',
  'steps.0.student.model': 'studentPath',
  'steps.0.data.text': 'calibText',
  'steps.0.data.evalText': 'textPath',
  'steps.0.data.batch': 'batch',
  'steps.0.data.length': 'length',
  'steps.0.loss.temperature': 'temperature',
  'steps.0.loss.alpha': 'alpha',
  'steps.0.teacherSignal.k': 'topk',
  'steps.0.schedule.steps': 'steps',
  'steps.0.schedule.epochs': 'epochs',
  'steps.0.schedule.lr': 'lr',
  'steps.0.schedule.warmup': 'warmup',
  'steps.0.schedule.evalEvery': 'evalEvery',
  'steps.0.schedule.seed': 'seed',
  'steps.0.schedule.checkpointEvery': 'checkpointEvery',
  'steps.0.loss.hidden': 'hiddenWeight',
  'steps.0.lora': 'loraRank',
  'steps.0.lora.rank': 'loraRank',
  'steps.0.lora.alpha': 'loraAlpha',
  'steps.0.lora.roles': 'loraRoles',
  'steps.0.lora.dropout': 'loraDropout',
};

/** A recipe issue path → the form field. */
export function distillFieldForIssuePath(path: string | readonly PropertyKey[]): DistillField {
  const parts = issuePathParts(path);
  for (let n = parts.length; n > 0; n--) {
    const field = FIELD_BY_PATH[parts.slice(0, n).join('.')];
    if (field) return field;
  }
  return 'form';
}

function friendly(message: string, field: DistillField): string {
  const number = numberMessage(message);
  if (number) return number;
  if (field === 'calibText' && /path is required/i.test(message)) return 'Choose a UTF-8 text file to train on.';
  if (field === 'steps' && /exactly one/.test(message)) return 'Give the number of steps or of epochs.';
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/** Which wizard step holds each field: teacher, student, data, loss and schedule, run. */
export const STEP_FIELDS: readonly (readonly DistillField[])[] = [
  ['modelPath', 'tokenizerPath', 'textPath', 'window', 'maxSamples', 'prompts'],
  ['studentKind', 'blocks', 'studentPath'],
  ['calibText', 'heldOut', 'evalEvery'],
  ['temperature', 'alpha', 'reverse', 'signal', 'topk', 'hiddenWeight', 'duration', 'steps', 'epochs', 'batch', 'length', 'lr', 'warmup', 'seed', 'checkpointEvery', 'loraRank', 'loraAlpha', 'loraRoles', 'loraDropout'],
  ['name', 'form'],
];

/** Issues that block running, by field; empty when the form makes a valid recipe. */
export function validateDistillForm(form: DistillForm): DistillIssues {
  const issues: DistillIssues = {};
  if (!form.modelPath.trim()) addIssue(issues, 'modelPath', 'Choose the teacher model file (.onnx).');
  if (!form.tokenizerPath.trim()) addIssue(issues, 'tokenizerPath', "Distillation reads text, which needs the teacher's tokenizer (tokenizer.json).");
  if ((form.evaluate || form.heldOut) && !form.textPath.trim()) addIssue(issues, 'textPath', 'Choose a UTF-8 text file to evaluate on (it is also the held-out text).');
  if (form.studentKind === 'blocks' && form.blocks.length === 0) addIssue(issues, 'blocks', "Pick the teacher's blocks the student keeps.");
  if (form.studentKind === 'model' && !form.studentPath.trim()) addIssue(issues, 'studentPath', 'Choose the student model file (.onnx).');
  if (!form.calibText.trim()) addIssue(issues, 'calibText', 'Choose a UTF-8 text file to train on.');
  const hidden = blank(form.hiddenWeight) ? 0 : toNumber(form.hiddenWeight);
  if (hidden > 0 && form.signal === 'topk') addIssue(issues, 'hiddenWeight', "Hidden-state matching needs the teacher's hidden states every step, which a top-k cache does not hold: use the teacher's logits every step, or set β to 0.");
  if (!blank(form.loraRank) && toNumber(form.loraRank) !== 0 && form.loraRoles.length === 0) addIssue(issues, 'loraRoles', 'Pick at least one projection for the adapters.');
  const parsed = Recipe.safeParse(buildDistillRecipe(form));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = distillFieldForIssuePath(issue.path);
      addIssue(issues, field, friendly(issue.message, field));
    }
  }
  return issues;
}

export function distillIssuesForStep(issues: DistillIssues, step: number): DistillIssues {
  const out: DistillIssues = {};
  for (const f of STEP_FIELDS[step] ?? []) if (issues[f]) out[f] = issues[f];
  return out;
}

export function firstDistillStepWithIssues(issues: DistillIssues): number {
  return STEP_FIELDS.findIndex((fields) => fields.some((f) => issues[f]));
}

export function distillIssuesFromServer(list: readonly { path: string; message: string }[]): DistillIssues {
  return issuesFromList(list, distillFieldForIssuePath, friendly);
}

/** A stored recipe with a distill step back into the form (re-run, edit); null when it is not one. */
export function distillFormFromRecipe(recipe: unknown): DistillForm | null {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return null;
  const step = parsed.data.steps.find((s) => s.type === DISTILL.type);
  if (!step || step.type !== 'distill' || 'from' in step.student) return null;
  const form: DistillForm = { ...defaultDistillForm(parsed.data.model.path), ...evaluationPartFromRecipe(parsed.data) };
  if ('blocks' in step.student) {
    form.studentKind = 'blocks';
    form.blocks = [...step.student.blocks];
  } else {
    form.studentKind = 'model';
    form.studentPath = step.student.model;
  }
  form.calibText = step.data.text;
  form.heldOut = step.data.evalText !== undefined;
  if (step.data.evalText !== undefined && !form.textPath) form.textPath = step.data.evalText;
  form.batch = step.data.batch;
  form.length = step.data.length;
  form.temperature = step.loss.temperature;
  form.alpha = step.loss.alpha;
  form.reverse = step.loss.reverse;
  form.signal = step.teacherSignal.kind;
  if (step.teacherSignal.kind === 'topk') form.topk = step.teacherSignal.k;
  const s = step.schedule;
  form.duration = s.steps !== undefined ? 'steps' : 'epochs';
  if (s.steps !== undefined) form.steps = s.steps;
  if (s.epochs !== undefined) form.epochs = s.epochs;
  form.lr = s.lr;
  form.warmup = s.warmup ?? '';
  form.evalEvery = s.evalEvery;
  form.seed = s.seed;
  form.checkpointEvery = s.checkpointEvery;
  form.hiddenWeight = step.loss.hidden > 0 ? step.loss.hidden : '';
  form.loraRank = step.lora?.rank ?? '';
  if (step.lora) {
    form.loraAlpha = step.lora.alpha;
    form.loraRoles = [...step.lora.roles];
    form.loraDropout = step.lora.dropout > 0 ? step.lora.dropout : '';
  }
  return form;
}

// ── words ───────────────────────────────────────────────────────────────────────────────────────────

/** "blocks 0, 2, 4 of the teacher" or the brought model's file name. */
export function studentText(form: Pick<DistillForm, 'studentKind' | 'blocks' | 'studentPath'>): string {
  return form.studentKind === 'blocks' ? `blocks ${[...form.blocks].sort((a, b) => a - b).join(', ') || '—'} of the teacher` : fileNameOf(form.studentPath);
}

/** "T 2 · α 0.5 · forward KL · teacher logits every step · 100 steps · B 4 × T 128 · lr 3e-4 …" — one line describing the run. */
export function distillSettingsLine(form: DistillForm): string {
  const how = form.duration === 'steps' ? `${form.steps} steps` : `${form.epochs} epoch(s)`;
  const steps = toNumber(form.steps);
  const warmup = !(typeof form.warmup === 'string' && form.warmup.trim() === '') ? `${form.warmup}`
    : form.duration === 'steps' && Number.isFinite(steps) ? `${defaultWarmupSteps(steps)} (default)` : 'default';
  return [`student: ${studentText(form)}`, `T ${form.temperature}`, `α ${form.alpha}`, form.reverse ? 'reverse KL' : 'forward KL',
    form.signal === 'topk' ? `top-${form.topk} teacher cache` : 'teacher logits every step',
    ...(!blank(form.hiddenWeight) && toNumber(form.hiddenWeight) !== 0 ? [`hidden-state MSE β ${form.hiddenWeight}`] : []),
    how, `B ${form.batch} × T ${form.length}`, `lr ${form.lr}, warmup ${warmup}`,
    ...(!blank(form.loraRank) && toNumber(form.loraRank) !== 0 ? [`LoRA rank ${form.loraRank}, α ${form.loraAlpha} on ${form.loraRoles.join(', ')}${!blank(form.loraDropout) && toNumber(form.loraDropout) !== 0 ? `, dropout ${form.loraDropout}` : ''}`] : [])].join(' · ');
}

/** The job's default name: "Distill model.onnx · blocks 0,2,4 · 100 steps". */
export function defaultDistillName(form: DistillForm): string {
  const how = form.duration === 'steps' ? `${form.steps} steps` : `${form.epochs} epoch(s)`;
  const who = form.studentKind === 'blocks' ? `blocks ${[...form.blocks].sort((a, b) => a - b).join(',')}` : fileNameOf(form.studentPath);
  return `Distill ${fileNameOf(form.modelPath)} · ${who} · ${how}`.slice(0, 200);
}
