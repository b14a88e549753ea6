import { Paper, Stack, Table, Text } from '@mantine/core';
import { z } from 'zod';
import { AccuracyDetailsSchema, type AccuracyDetails } from '../../preload/methods.ts';
import { formatDecimal, formatInteger } from '../lib/format.ts';

const Evaluation = z.looseObject({
  evaluation: z.looseObject({
    original: z.looseObject({ accuracy: AccuracyDetailsSchema.optional() }).optional(),
    result: z.looseObject({ accuracy: AccuracyDetailsSchema.optional() }).optional(),
    model: z.looseObject({ accuracy: AccuracyDetailsSchema.optional() }).optional(),
  }),
});

/** The accuracy sections of a job's details: the result's (or the model's) and the original's when it was scored. */
export function accuracySections(details: unknown): { original: AccuracyDetails | null; result: AccuracyDetails } | null {
  const parsed = Evaluation.safeParse(details);
  if (!parsed.success) return null;
  const e = parsed.data.evaluation;
  const result = e.result?.accuracy ?? e.model?.accuracy;
  return result ? { original: e.original?.accuracy ?? null, result } : null;
}

/** Per-class F1 (with precision, recall and support) of a classifier's held-out examples, original beside result. */
export function ClassificationReport({ details }: { details: unknown }) {
  const sections = accuracySections(details);
  if (!sections) return null;
  const { original, result } = sections;
  const f1 = (d: AccuracyDetails | null, i: number): string => (d?.perClass[i] ? formatDecimal(d.perClass[i].f1, 4) : '—');
  return (
    <Paper withBorder radius="md" p="md" data-testid="classification-report">
      <Stack gap="xs">
        <Text fw={700}>Per class</Text>
        <Text size="sm" c="dimmed">{`${formatInteger(result.count)} held-out examples of ${result.file}`}</Text>
        <Table verticalSpacing={4}>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Class</Table.Th><Table.Th>Examples</Table.Th>
              {original && <Table.Th>F1, original</Table.Th>}
              <Table.Th>F1{original ? ', result' : ''}</Table.Th><Table.Th>Precision</Table.Th><Table.Th>Recall</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {result.perClass.map((m, i) => (
              <Table.Tr key={m.class}>
                <Table.Td>{m.class}</Table.Td><Table.Td>{formatInteger(m.support)}</Table.Td>
                {original && <Table.Td>{f1(original, i)}</Table.Td>}
                <Table.Td>{f1(result, i)}</Table.Td><Table.Td>{formatDecimal(m.precision, 4)}</Table.Td><Table.Td>{formatDecimal(m.recall, 4)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Stack>
    </Paper>
  );
}
