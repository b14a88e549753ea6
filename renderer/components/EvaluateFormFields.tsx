import { Checkbox, Group, NumberInput, SegmentedControl, Stack, Switch, Text, Textarea, TextInput } from '@mantine/core';
import type { EvaluateForm, FormIssues, Protocol } from '../lib/evaluate-form.ts';
import { PROMPT_HELP, PROTOCOL_HELP, withProtocol } from '../lib/evaluate-form.ts';
import { PathInput } from './PathInput.tsx';

interface Props {
  form: EvaluateForm;
  issues: FormIssues;
  onChange: (next: EvaluateForm) => void;
  disabled?: boolean;
}

/** The fields of an evaluation recipe: model, tokenizer, perplexity (text, protocol, L, N), accuracy on labelled data, speed, name. */
export function EvaluateFormFields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof EvaluateForm>(key: K, value: EvaluateForm[K]) => onChange({ ...form, [key]: value });
  return (
    <Stack gap="md">
      <PathInput label="Model" placeholder="/path/to/model.onnx" value={form.modelPath} onChange={(v) => set('modelPath', v)}
        purpose="model" error={issues.modelPath} testId="eval-model-path" />
      <PathInput label="Tokenizer" description="A Hugging Face tokenizer.json (tokenizer_config.json beside it is read for BOS/EOS)."
        placeholder="/path/to/tokenizer.json" value={form.tokenizerPath} onChange={(v) => set('tokenizerPath', v)}
        purpose="tokenizer" error={issues.tokenizerPath} testId="eval-tokenizer-path" />

      <Checkbox label="Measure perplexity" checked={form.perplexity} onChange={(e) => set('perplexity', e.currentTarget.checked)}
        disabled={disabled} data-testid="eval-perplexity-toggle" />
      {form.perplexity && (
        <Stack gap="sm" pl="md" className="indented">
          <PathInput label="Text" description="A UTF-8 text file to score the model on, of the kind the model is meant for (the sample's TinyStories text suits only the sample model)." placeholder="/path/to/text.txt"
            value={form.textPath} onChange={(v) => set('textPath', v)} purpose="text" error={issues.textPath} testId="eval-text-path" />
          <div>
            <Text size="sm" fw={500} mb={4}>Protocol</Text>
            <SegmentedControl
              value={form.protocol}
              onChange={(v) => onChange(withProtocol(form, v as Protocol))}
              data={[{ value: 'documents', label: 'Documents' }, { value: 'stream', label: 'Stream' }]}
              disabled={disabled}
              data-testid="eval-protocol"
            />
            <Text size="xs" c="dimmed" mt={4} data-testid="eval-protocol-help">{PROTOCOL_HELP[form.protocol]}</Text>
            {issues.protocol && <Text size="xs" c="red">{issues.protocol}</Text>}
          </div>
          <Group grow align="flex-start">
            <NumberInput label="Window L (tokens)" value={form.window} onChange={(v) => set('window', v)} min={8} max={65536} step={64}
              allowDecimal={false} error={issues.window} disabled={disabled} data-testid="eval-window" />
            <NumberInput label={form.protocol === 'documents' ? 'Documents N' : 'Windows N'} value={form.maxSamples} onChange={(v) => set('maxSamples', v)}
              min={1} max={1_000_000} allowDecimal={false} error={issues.maxSamples} disabled={disabled} data-testid="eval-samples" />
          </Group>
        </Stack>
      )}

      <Checkbox label="Measure accuracy on labelled data" checked={form.accuracy} onChange={(e) => set('accuracy', e.currentTarget.checked)}
        disabled={disabled} data-testid="eval-accuracy-toggle" />
      {form.accuracy && (
        <Stack gap="sm" pl="md" className="indented">
          <PathInput label="Labelled data" description="TSV, CSV or JSONL with a text and a label column; a held-out share of its examples is scored."
            placeholder="/path/to/data.tsv" value={form.labelsPath} onChange={(v) => set('labelsPath', v)} purpose="text" error={issues.labelsPath} testId="eval-labels-path" />
          <NumberInput label="Held-out share" description="A fraction below 1 (0.2) or a count of examples, drawn as a classification fine-tune on the file holds them out."
            value={form.heldOut} onChange={(v) => set('heldOut', v)} min={0} decimalScale={4} w={320} error={issues.heldOut} disabled={disabled} data-testid="eval-held-out" />
          <Text size="sm" fw={500}>For a decoder</Text>
          <Textarea label="Prompt template" description={PROMPT_HELP.template} value={form.template} onChange={(e) => set('template', e.currentTarget.value)}
            autosize minRows={2} maxRows={6} error={issues.template} disabled={disabled} data-testid="eval-prompt-template" />
          <TextInput label="Answer words (verbalizers)" description={PROMPT_HELP.verbalizers} placeholder="the labels as written" value={form.verbalizers}
            onChange={(e) => set('verbalizers', e.currentTarget.value)} error={issues.verbalizers} disabled={disabled} data-testid="eval-verbalizers" />
          <Switch label="Per-token scores" description={PROMPT_HELP.lengthNormalize} checked={form.lengthNormalize}
            onChange={(e) => set('lengthNormalize', e.currentTarget.checked)} disabled={disabled} data-testid="eval-length-normalize" />
        </Stack>
      )}

      <Switch label="Speed test" description="Prefill time for P prompt tokens and decode speed for D generated tokens."
        checked={form.speed} onChange={(e) => set('speed', e.currentTarget.checked)} disabled={disabled} data-testid="eval-speed-toggle" />
      {form.speed && (
        <Group grow align="flex-start" pl="md" className="indented">
          <NumberInput label="Prompt tokens P" value={form.promptTokens} onChange={(v) => set('promptTokens', v)} min={1} max={8192}
            allowDecimal={false} error={issues.promptTokens} disabled={disabled} data-testid="eval-prompt-tokens" />
          <NumberInput label="Decode tokens D" value={form.decodeTokens} onChange={(v) => set('decodeTokens', v)} min={1} max={4096}
            allowDecimal={false} error={issues.decodeTokens} disabled={disabled} data-testid="eval-decode-tokens" />
        </Group>
      )}

      <Switch label="Measure again (no cache)" description="Run the evaluation even when an earlier one of the same model file with the same settings could answer it."
        checked={form.noCache} onChange={(e) => set('noCache', e.currentTarget.checked)} disabled={disabled} data-testid="eval-no-cache-toggle" />

      <TextInput label="Name" description="Shown in the history; optional." placeholder="e.g. baseline perplexity" value={form.name}
        onChange={(e) => set('name', e.currentTarget.value)} maxLength={200} error={issues.name} disabled={disabled} data-testid="eval-name" />
    </Stack>
  );
}
