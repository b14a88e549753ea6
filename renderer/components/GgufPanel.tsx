/**
 * "Export GGUF & evaluate in llama.cpp" on a done experiment's page: the result written as a .gguf file
 * beside it (history.evaluateGguf) and run in llama.cpp on the experiment's own evaluation text, protocol
 * and prompts, shown beside what onnxruntime measured for the ONNX result. The latest evaluation of each
 * type is recorded in the experiment's details and shown again on a later visit.
 */
import { Button, Group, Select, Stack, Table, Text } from '@mantine/core';
import { IconFileExport } from '@tabler/icons-react';
import { useState } from 'react';
import type { ErrorShape, ExperimentDetail, GgufComparison, GgufType } from '../../preload/contract.ts';
import { defaultGgufType, recordedGgufComparisons } from '../../preload/gguf.ts';
import { useApi } from '../hooks/useApi.ts';
import { onAsync } from '../lib/async-handler.ts';
import { toUiError } from '../lib/errors.ts';
import { formatBytes } from '../lib/format.ts';
import { ErrorAlert } from './ErrorAlert.tsx';

const TYPES: { value: GgufType; label: string }[] = [
  { value: 'q4_1', label: 'Q4_1 (exact for a 4-bit block-32 asymmetric GPTQ/RTN result)' },
  { value: 'q4_0', label: 'Q4_0' },
  { value: 'q8_0', label: 'Q8_0' },
  { value: 'f16', label: 'F16' },
  { value: 'f32', label: 'F32' },
];

/** Whether the experiment has a result beside its original, measured by perplexity: what a GGUF is set beside. */
export function hasGgufComparison(detail: ExperimentDetail): boolean {
  const evaluation = detail.details.evaluation as { result?: { modelPath?: unknown } } | undefined;
  return detail.status === 'done' && typeof evaluation?.result?.modelPath === 'string'
    && detail.metrics.some((m) => m.subject === 'result' && m.name === 'perplexity');
}

const fixed = (v: number | null, digits: number): string => (v === null ? '—' : v.toFixed(digits));

function Comparison({ c }: { c: GgufComparison }) {
  const rows = Math.max(c.onnx.generations.length, c.llamaCpp.generations.length);
  return (
    <Stack gap="xs" data-testid="gguf-result">
      <Text size="sm">
        <Text span ff="monospace" className="wrap-anywhere" data-testid="gguf-path">{c.path}</Text> · {formatBytes(c.bytes)} · {c.type.toUpperCase()}
        {c.exactFromNBits ? ' · the 4-bit codes carried over exactly' : ''}
      </Text>
      <Text size="sm" c="dimmed" data-testid="gguf-protocol">
        Both perplexities on the same text and protocol: {c.protocol.text} ({c.protocol.protocol}, L = {c.protocol.window}, {c.protocol.samples} samples, {c.protocol.predictedTokens} predicted tokens), tokenized by the same tokenizer.
      </Text>
      <Table withTableBorder striped data-testid="gguf-table">
        <Table.Thead>
          <Table.Tr><Table.Th /><Table.Th>ONNX result (onnxruntime)</Table.Th><Table.Th>GGUF (llama.cpp)</Table.Th></Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          <Table.Tr>
            <Table.Td>Perplexity</Table.Td>
            <Table.Td data-testid="gguf-onnx-perplexity">{fixed(c.onnx.perplexity, 4)}</Table.Td>
            <Table.Td data-testid="gguf-llama-perplexity">{fixed(c.llamaCpp.perplexity, 4)}</Table.Td>
          </Table.Tr>
          <Table.Tr>
            <Table.Td>Decode speed (tokens/s)</Table.Td>
            <Table.Td>{c.onnx.decodeTokensPerS === null ? '— (no speed measurement in this run)' : fixed(c.onnx.decodeTokensPerS, 0)}</Table.Td>
            <Table.Td>{fixed(c.llamaCpp.decodeTokensPerS, 0)}</Table.Td>
          </Table.Tr>
          {Array.from({ length: rows }, (_, i) => {
            const prompt = c.llamaCpp.generations[i]?.prompt ?? c.onnx.generations[i]?.prompt ?? '';
            return (
              <Table.Tr key={i}>
                <Table.Td>“{prompt}”</Table.Td>
                <Table.Td>{c.onnx.generations.find((g) => g.prompt === prompt)?.completion ?? '—'}</Table.Td>
                <Table.Td>{c.llamaCpp.generations[i]?.completion ?? '—'}</Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {c.notes.map((n) => <Text key={n} size="xs" c="dimmed">{n}</Text>)}
    </Stack>
  );
}

export function GgufPanel({ detail }: { detail: ExperimentDetail }) {
  const api = useApi();
  const [type, setType] = useState<GgufType>(() => defaultGgufType(detail.recipe));
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<ErrorShape | null>(null);
  const [result, setResult] = useState<GgufComparison | null>(null);
  // The latest evaluation of the chosen type recorded in the history, until a new one answers.
  const shown = result?.type === type ? result : recordedGgufComparisons(detail.details)[type] ?? null;

  async function go() {
    setRunning(true);
    setError(null);
    try {
      setResult(await api.call('history.evaluateGguf', { id: detail.id, type }));
    } catch (e) {
      setError(toUiError(e));
    } finally {
      setRunning(false);
    }
  }

  return (
    <Stack gap="sm" data-testid="gguf-panel">
      <Text size="sm" c="dimmed">
        Writes the result as a GGUF file beside it and runs that file in llama.cpp on this experiment’s evaluation, to check that the deployed file behaves like the measured one.
      </Text>
      <Group gap="xs" align="flex-end">
        <Select label="GGUF type" data={TYPES} value={type} onChange={(v) => { if (v) setType(v as GgufType); }} allowDeselect={false} w={380} data-testid="gguf-type" />
        <Button leftSection={<IconFileExport size={16} />} onClick={onAsync(go)} loading={running} data-testid="gguf-evaluate">Export GGUF &amp; evaluate in llama.cpp</Button>
      </Group>
      {error && <ErrorAlert error={error} testId="gguf-error" />}
      {shown && <Comparison c={shown} />}
    </Stack>
  );
}
