// The Distill wizard's form ⇄ recipe: the step it builds, the issues it shows per wizard step, a stored
// recipe read back, the one-line settings, the route, and the curve's distillation parts for the charts.
import { describe, expect, it } from 'vitest';
import { Recipe } from '../../../preload/recipe.ts';
import { trainPointOf, trainSeriesPoint, type CurvePoint } from '../../../preload/series.ts';
import {
  buildDistillRecipe, defaultDistillForm, defaultDistillName, distillFormFromRecipe, distillIssuesForStep, distillSettingsLine, everyOtherBlock,
  firstDistillStepWithIssues, hiddenMapping, hiddenMappingText, LORA_HELP, LOSS_HELP, validateDistillForm, type DistillForm,
} from '../../../renderer/lib/distill-form.ts';
import { href, parseHash, wizardHref } from '../../../renderer/lib/route.ts';
import { curveFigures, curveRows, hasParts } from '../../../renderer/lib/train-curve.ts';

const filled = (over: Partial<DistillForm> = {}): DistillForm => ({
  ...defaultDistillForm('/m/teacher.onnx'), tokenizerPath: '/m/tokenizer.json', textPath: '/t/eval.txt', calibText: '/t/train.txt',
  blocks: [4, 0, 2], steps: 40, batch: 2, length: 32, lr: '1e-3', ...over,
});

describe('the Distill wizard form', () => {
  it('builds a recipe with the teacher as the model and one distill step, the schema\'s defaults filled in', () => {
    const r = Recipe.parse(buildDistillRecipe(filled({ temperature: '4', alpha: '0.9', reverse: true, signal: 'topk', topk: 16 })));
    expect(r.model.path).toBe('/m/teacher.onnx');
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toEqual({
      type: 'distill', student: { blocks: [0, 2, 4] }, data: { text: '/t/train.txt', evalText: '/t/eval.txt', batch: 2, length: 32 },
      loss: { temperature: 4, alpha: 0.9, reverse: true, hidden: 0 }, teacherSignal: { kind: 'topk', k: 16 },
      schedule: { steps: 40, lr: 1e-3, accumulate: 1, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, evalEvery: 20, seed: 0, checkpointEvery: 25 },
    });
    expect(r.evaluation.perplexity?.text).toBe('/t/eval.txt');
    const brought = Recipe.parse(buildDistillRecipe(filled({ studentKind: 'model', studentPath: '/m/small.onnx', heldOut: false })));
    expect(brought.steps[0]).toMatchObject({ student: { model: '/m/small.onnx' }, data: { text: '/t/train.txt' } });
    expect(brought.steps[0].type === 'distill' && brought.steps[0].data.evalText).toBeUndefined();
  });

  it('shows each issue on the wizard step that holds the field', () => {
    expect(validateDistillForm(filled())).toEqual({});
    const none = validateDistillForm(filled({ blocks: [] }));
    expect(none.blocks).toMatch(/Pick the teacher's blocks/);
    expect(firstDistillStepWithIssues(none)).toBe(1);
    const loss = validateDistillForm(filled({ alpha: '1.5', temperature: '0' }));
    expect(loss.alpha).toMatch(/alpha is a weight from 0 to 1/i);
    expect(loss.temperature).toMatch(/temperature must be above 0/i);
    expect(Object.keys(distillIssuesForStep(loss, 3)).sort()).toEqual(['alpha', 'temperature']);
    expect(distillIssuesForStep(loss, 1)).toEqual({});
    expect(validateDistillForm(filled({ calibText: '' })).calibText).toMatch(/text file to train on/);
    expect(validateDistillForm(filled({ studentKind: 'model', studentPath: '' })).studentPath).toMatch(/student model file/);
    expect(validateDistillForm(filled({ steps: '' })).steps).toBeTruthy();
  });

  it('reads a stored recipe back into the same form', () => {
    const form = filled({ temperature: 3, alpha: 0.7, reverse: true, signal: 'topk', topk: 8, warmup: 2, evalEvery: 5 });
    const back = distillFormFromRecipe(Recipe.parse(buildDistillRecipe(form)))!;
    expect(buildDistillRecipe(back)).toEqual(buildDistillRecipe({ ...form, blocks: [0, 2, 4] }));
    expect(distillFormFromRecipe({ model: { path: '/m.onnx' }, steps: [{ type: 'train', text: '/t.txt', steps: 1 }] })).toBeNull();
    const lora = filled({ loraRank: 8 });
    expect(Recipe.parse(buildDistillRecipe(lora)).steps[0]).toMatchObject({ lora: { rank: 8, alpha: 16, roles: ['q', 'k', 'v', 'o'] } });
    expect(distillFormFromRecipe(Recipe.parse(buildDistillRecipe(lora)))?.loraRank).toBe(8);
    expect(distillSettingsLine(lora)).toContain('LoRA rank 8');
  });

  it('puts the hidden-state weight and LoRA rank, α and roles into the step, reads them back, and refuses what cannot run', () => {
    const form = filled({ hiddenWeight: '0.5', loraRank: 4, loraAlpha: '8', loraRoles: ['q', 'v', 'down'] });
    const step = Recipe.parse(buildDistillRecipe(form)).steps[0];
    expect(step).toMatchObject({ loss: { hidden: 0.5 }, lora: { rank: 4, alpha: 8, roles: ['q', 'v', 'down'] } });
    const back = distillFormFromRecipe(Recipe.parse(buildDistillRecipe(form)))!;
    expect(back).toMatchObject({ hiddenWeight: 0.5, loraRank: 4, loraAlpha: 8, loraRoles: ['q', 'v', 'down'] });
    expect(buildDistillRecipe(back)).toEqual(buildDistillRecipe({ ...form, blocks: [0, 2, 4] }));
    expect(distillSettingsLine(form)).toContain('hidden-state MSE β 0.5');
    expect(distillSettingsLine(form)).toContain('LoRA rank 4, α 8 on q, v, down');
    // Off: no hidden term, no adapters, whatever α and roles say.
    const off = Recipe.parse(buildDistillRecipe(filled({ hiddenWeight: '', loraRank: '', loraAlpha: 99, loraRoles: ['up'] }))).steps[0];
    expect(off).toMatchObject({ loss: { hidden: 0 } });
    expect(off.type === 'distill' && off.lora).toBeUndefined();
    // Bad values land on their own fields, on the Loss and schedule step.
    const bad = validateDistillForm(filled({ hiddenWeight: '-1', loraRank: 4, loraAlpha: '0', loraRoles: [] }));
    expect(Object.keys(bad).sort()).toEqual(['hiddenWeight', 'loraAlpha', 'loraRoles']);
    expect(bad.loraRoles).toMatch(/at least one projection/);
    expect(firstDistillStepWithIssues(bad)).toBe(3);
    // LoRA dropout: into the step when above 0, read back, in the settings line; 1 or more is refused on its field.
    const dropped = filled({ loraRank: 4, loraDropout: '0.1' });
    expect(Recipe.parse(buildDistillRecipe(dropped)).steps[0]).toMatchObject({ lora: { rank: 4, dropout: 0.1 } });
    expect(distillFormFromRecipe(Recipe.parse(buildDistillRecipe(dropped)))?.loraDropout).toBe(0.1);
    expect(distillSettingsLine(dropped)).toContain(', dropout 0.1');
    expect(distillFormFromRecipe(Recipe.parse(buildDistillRecipe(filled({ loraRank: 4 }))))?.loraDropout).toBe('');
    expect(Object.keys(validateDistillForm(filled({ loraRank: 4, loraDropout: '1' })))).toEqual(['loraDropout']);
    expect(validateDistillForm(filled({ hiddenWeight: 1, signal: 'topk' })).hiddenWeight).toMatch(/top-k cache/);
    for (const line of [LOSS_HELP.hidden, ...Object.values(LORA_HELP)]) expect(line).not.toMatch(/\n/);
  });

  it('shows which teacher block each student block is matched with', () => {
    expect(hiddenMapping({ studentKind: 'blocks', blocks: [4, 0, 2] }, 5, null)).toEqual([{ student: 0, teacher: 0 }, { student: 1, teacher: 2 }, { student: 2, teacher: 4 }]);
    expect(hiddenMappingText(hiddenMapping({ studentKind: 'blocks', blocks: [0, 2, 4] }, 5, null), { studentKind: 'blocks' })).toBe('student 0 ← teacher 0 · 1 ← 2 · 2 ← 4');
    // A student of its own: round((j + 1) · L_t / L_s) − 1, the last student block on the last teacher block.
    expect(hiddenMapping({ studentKind: 'model', blocks: [] }, 6, 3)?.map((m) => m.teacher)).toEqual([1, 3, 5]);
    expect(hiddenMapping({ studentKind: 'model', blocks: [] }, 6, null)).toBeNull();
    expect(hiddenMappingText(null, { studentKind: 'model' })).toMatch(/round\(\(j \+ 1\)/);
  });

  it('says what will run in one line, names the job, and explains T, α and reverse KL in one line each', () => {
    expect(distillSettingsLine(filled())).toBe('student: blocks 0, 2, 4 of the teacher · T 2 · α 0.5 · forward KL · teacher logits every step · 40 steps · B 2 × T 32 · lr 1e-3, warmup 4 (default)');
    expect(defaultDistillName(filled())).toBe('Distill teacher.onnx · blocks 0,2,4 · 40 steps');
    for (const line of Object.values(LOSS_HELP)) expect(line).not.toMatch(/\n/);
    expect(everyOtherBlock(5)).toEqual([0, 2, 4]);
    expect(everyOtherBlock(4)).toEqual([0, 2]);
  });

  it('has its own route, and a distill job opens it from the history', () => {
    expect(parseHash(href.distill('/m/a b.onnx', { jobId: 'j', experimentId: 3 }))).toEqual({ name: 'distill', path: '/m/a b.onnx', jobId: 'j', experimentId: 3 });
    expect(wizardHref('distill', '/m.onnx')).toBe(href.distill('/m.onnx'));
  });

  it('the curve carries the parts through the series points, for the KL/CE and agreement charts', () => {
    const p: CurvePoint = { step: 3, totalSteps: 4, loss: 2, lr: 1e-3, gradNorm: 1, tokensPerSecond: 10, etaSeconds: 1, parts: { kl: 0.5, ce: 1.5, agree: 0.25 } };
    const back = trainPointOf(trainSeriesPoint(p));
    expect(back).toEqual(p);
    expect(hasParts([back])).toBe(true);
    expect(curveRows([back])[0]).toMatchObject({ kl: 0.5, ce: 1.5, agree: 0.25 });
    expect(curveFigures([back])?.agree).toBe(0.25);
    const plain = { ...p, parts: undefined };
    delete plain.parts;
    expect(hasParts([plain])).toBe(false);
    expect(curveFigures([plain])?.agree).toBeNull();
  });
});
