import { Button, Group, NumberInput, Paper, Stack, Switch, Text, Textarea } from '@mantine/core';
import { IconSparkles } from '@tabler/icons-react';
import type { Sample } from '../../preload/contract.ts';
import type { Issues } from '../lib/form-issues.ts';
import type { EvaluationFormPart } from '../lib/recipe-form.ts';
import { PathInput } from './PathInput.tsx';

/**
 * The Model step of a compress wizard: the model, its tokenizer, and how original and result are
 * evaluated (perplexity text, L, N, prompts, speed, cache). Test ids start with `testIdPrefix`.
 */
export function ModelEvaluationFields<F extends EvaluationFormPart>({ form, issues, samples, onChange, onSample, testIdPrefix }: {
  form: F; issues: Issues<keyof EvaluationFormPart>; samples: readonly Sample[]; onChange: (f: F) => void; onSample: (s: Sample) => void; testIdPrefix: string;
}) {
  const set = <K extends keyof EvaluationFormPart>(key: K, value: F[K]) => onChange({ ...form, [key]: value });
  const sample = samples[0];
  // A model that is not the sample: no default text, and a hint on what to choose.
  const ownModel = form.modelPath.trim() !== '' && !samples.some((s) => s.modelPath === form.modelPath.trim());
  return (
    <Paper withBorder radius="md" p="md">
      <Stack gap="md">
        {sample && (
          <Group gap="sm" wrap="nowrap">
            <Button variant="light" leftSection={<IconSparkles size={16} />} onClick={() => onSample(sample)} data-testid={`${testIdPrefix}-use-sample`}>Use the sample</Button>
            <Text size="sm" c="dimmed">{sample.name}: model, tokenizer and evaluation text in one click.</Text>
          </Group>
        )}
        <PathInput label="Model" placeholder="/path/to/model.onnx" value={form.modelPath} onChange={(v) => set('modelPath', v)}
          purpose="model" error={issues.modelPath} testId={`${testIdPrefix}-model-path`} />
        <PathInput label="Tokenizer" description="The model's Hugging Face tokenizer.json (needed to evaluate; copied beside the output)."
          placeholder="/path/to/tokenizer.json" value={form.tokenizerPath} onChange={(v) => set('tokenizerPath', v)}
          purpose="tokenizer" error={issues.tokenizerPath} testId={`${testIdPrefix}-tokenizer-path`} />
        <Switch label="Evaluate original and result" description="Perplexity on a text, agreement with the original, and generations from the same prompts, side by side."
          checked={form.evaluate} onChange={(e) => set('evaluate', e.currentTarget.checked)} data-testid={`${testIdPrefix}-evaluate-toggle`} />
        {form.evaluate && (
          <Stack gap="sm" pl="md" className="indented">
            <PathInput label="Evaluation text"
              description={`A UTF-8 text file; blank-line separated documents, each scored from its start.${ownModel ? ' Choose text of the kind your model is meant for: the sample\'s TinyStories stories suit only the sample model.' : ''}`}
              placeholder="/path/to/text.txt" value={form.textPath} onChange={(v) => set('textPath', v)} purpose="text" error={issues.textPath} testId={`${testIdPrefix}-text-path`} />
            <Group grow align="flex-start">
              <NumberInput label="Window L (tokens)" value={form.window} onChange={(v) => set('window', v)} min={8} max={65536} step={64}
                allowDecimal={false} error={issues.window} data-testid={`${testIdPrefix}-window`} />
              <NumberInput label="Documents N" value={form.maxSamples} onChange={(v) => set('maxSamples', v)} min={1} max={1_000_000}
                allowDecimal={false} error={issues.maxSamples} data-testid={`${testIdPrefix}-samples`} />
            </Group>
            <Textarea label="Prompts for generations" description="One per line (at most 16); both models continue each greedily for 48 tokens."
              value={form.prompts} onChange={(e) => set('prompts', e.currentTarget.value)} autosize minRows={2} maxRows={6}
              error={issues.prompts} data-testid={`${testIdPrefix}-prompts`} />
          </Stack>
        )}
        <Switch label="Speed test" description="Prefill time for 64 prompt tokens and decode speed for 64 generated tokens: both models timed interleaved in this job, 5 runs each, median and range."
          checked={form.speed} onChange={(e) => set('speed', e.currentTarget.checked)} data-testid={`${testIdPrefix}-speed-toggle`} />
        <Switch label="Measure again (no cache)" description="Nothing is taken from earlier evaluations of the same models."
          checked={form.noCache} onChange={(e) => set('noCache', e.currentTarget.checked)} data-testid={`${testIdPrefix}-no-cache-toggle`} />
      </Stack>
    </Paper>
  );
}
