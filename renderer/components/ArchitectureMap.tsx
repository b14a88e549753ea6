/** The architecture map on the Model page: family, heads, and a compact table of each block's roles → weights. */
import { Alert, Badge, Button, Code, Group, Paper, ScrollArea, Stack, Table, Text, Title } from '@mantine/core';
import { useState } from 'react';
import type { ArchitectureSummary } from '../../preload/contract.ts';

type Block = ArchitectureSummary['blocks'][number];

const FAMILY_WORDS: Record<ArchitectureSummary['family'], string> = {
  llama: 'Llama-like (RMSNorm, gated MLP)',
  gpt2: 'GPT-2-like (LayerNorm, fc1/fc2 MLP)',
  bert: 'BERT-like (encoder)',
  unknown: 'Not recognised',
};

const BLOCK_ROWS = 8;

/** Role → weight for one block; absent roles are left out. */
function roles(b: Block): [string, string][] {
  const gated = b.mlp.gate !== null;
  const pairs: [string, string | null][] = [
    ['q', b.attention.q], ['k', b.attention.k], ['v', b.attention.v], ['qkv', b.attention.qkv], ['o', b.attention.o],
    ['gate', b.mlp.gate], [gated ? 'up' : 'fc1', b.mlp.up], [gated ? 'down' : 'fc2', b.mlp.down],
  ];
  return pairs.filter((p): p is [string, string] => p[1] !== null);
}

const count = (v: number | null): string => (v === null ? '?' : String(v));

export function ArchitectureMap({ a }: { a: ArchitectureSummary }) {
  const [all, setAll] = useState(false);
  const shown = all ? a.blocks : a.blocks.slice(0, BLOCK_ROWS);
  return (
    <Paper withBorder radius="md" p="md" data-testid="architecture-map">
      <Group justify="space-between" mb="sm">
        <Title order={4}>Architecture</Title>
        <Group gap="xs">
          <Badge variant="light" tt="none" data-testid="architecture-family">{FAMILY_WORDS[a.family]}</Badge>
          <Badge variant="outline" color="gray" tt="none" data-testid="architecture-blocks">{a.blocks.length} block{a.blocks.length === 1 ? '' : 's'}</Badge>
          {a.tiedEmbedding && <Badge variant="outline" color="gray" tt="none" data-testid="architecture-tied">tied embedding</Badge>}
        </Group>
      </Group>
      <Stack gap="xs">
        <Text size="sm">
          Embedding <Code>{a.embedding ?? '—'}</Code>{' · '}LM head <Code>{a.lmHead ?? '—'}</Code>
          {a.finalNorm && <>{' · '}final norm <Code>{a.finalNorm}</Code></>}
        </Text>
        {a.blocks.length > 0 && (
          <ScrollArea>
            <Table striped withTableBorder fz="xs" data-testid="architecture-blocks-table">
              <Table.Thead>
                <Table.Tr><Table.Th>Block</Table.Th><Table.Th>Heads / KV / size</Table.Th><Table.Th>MLP</Table.Th><Table.Th>Role → weight</Table.Th></Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {shown.map((b) => (
                  <Table.Tr key={b.index}>
                    <Table.Td>{b.index}</Table.Td>
                    <Table.Td style={{ whiteSpace: 'nowrap' }}>{count(b.attention.heads)} / {count(b.attention.kvHeads)} / {count(b.attention.headSize)}</Table.Td>
                    <Table.Td style={{ whiteSpace: 'nowrap' }}>{b.mlp.activation ?? '?'} × {count(b.mlp.intermediate)}</Table.Td>
                    <Table.Td>
                      {roles(b).map(([role, w]) => (
                        <Text key={role} size="xs" ff="monospace" className="wrap-anywhere"><b>{role}</b> {w}</Text>
                      ))}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        )}
        {a.blocks.length > BLOCK_ROWS && (
          <Button variant="subtle" size="xs" onClick={() => setAll((x) => !x)}>{all ? `Show the first ${BLOCK_ROWS}` : `Show all ${a.blocks.length}`}</Button>
        )}
        {a.issues.length > 0 && (
          <Alert color="yellow" variant="light" title="Parts not recognised" data-testid="architecture-issues">
            {a.issues.map((issue) => <Text key={issue} size="sm">{issue}</Text>)}
          </Alert>
        )}
      </Stack>
    </Paper>
  );
}
