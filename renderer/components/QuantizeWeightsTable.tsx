import { Alert, Badge, Button, Group, Paper, ScrollArea, SegmentedControl, Stack, Switch, Table, Text, Textarea, Title, Tooltip } from '@mantine/core';
import { IconArrowBigUpLines, IconBulb } from '@tabler/icons-react';
import { useMemo, useState, type ReactNode } from 'react';
import type { QuantizePlan, QuantizePlanWeight } from '../../preload/contract.ts';
import type { BitsOverride } from '../../preload/recipe.ts';
import { formatBytes, formatInteger, formatShape } from '../lib/format.ts';
import { exactNamePattern, findLmHead, matchingKeepPatterns, parseKeepPatterns, toggleKeepPattern } from '../lib/quantize-form.ts';

const ACTION_COLOR: Record<QuantizePlanWeight['action'], string> = { quantize: 'teal', keep: 'blue', skip: 'gray' };

/** The action column: the bits a quantized weight gets ("4-bit", "8-bit" for an override, "fp16"), "float" when kept. */
function actionWord(w: QuantizePlanWeight): string {
  if (w.action === 'keep') return 'float';
  if (w.action === 'skip') return 'skip';
  if (w.bits === undefined) return 'quantize';
  return w.bits === 16 ? 'fp16' : `${w.bits}-bit`;
}
const ROWS = 150;

/** A weight name that wraps after its separators (`.`, `/`, `_`), not in the middle of a word. */
function breakableName(name: string): ReactNode[] {
  return name.split(/(?<=[./_])/).flatMap((part, i) => (i === 0 ? [part] : [<wbr key={i} />, part]));
}

type Filter = 'all' | QuantizePlanWeight['action'];

interface Props {
  plan: QuantizePlan;
  keepText: string;
  onKeepText: (text: string) => void;
  keepError?: string;
  disabled?: boolean;
  /** Weights at other bits (mixed precision); cleared with onOverrides([]). */
  overrides?: readonly BitsOverride[];
  onOverrides?: (next: BitsOverride[]) => void;
}

function OverridesSummary({ overrides, onOverrides }: { overrides: readonly BitsOverride[]; onOverrides: (next: BitsOverride[]) => void }) {
  const bits = [...new Set(overrides.map((o) => o.bits))].join('/');
  return (
    <Alert variant="light" color="orange" icon={<IconArrowBigUpLines size={18} />} p="sm" data-testid="overrides-summary" data-count={overrides.length}>
      <Group justify="space-between" wrap="nowrap" gap="sm">
        <Stack gap={2} style={{ minWidth: 0, flex: 1 }}>
          <Text size="sm">Mixed precision: {overrides.length} pattern{overrides.length === 1 ? '' : 's'} at {bits}-bit (the recipe's <Text span ff="monospace" size="sm">overrides</Text>).</Text>
          <Text size="xs" ff="monospace" c="dimmed" className="wrap-anywhere">{overrides.map((o) => o.pattern).join('  ·  ')}</Text>
        </Stack>
        <Button size="compact-sm" variant="subtle" color="orange" onClick={() => onOverrides([])} style={{ flexShrink: 0 }} data-testid="clear-overrides">Clear</Button>
      </Group>
    </Alert>
  );
}

function LmHeadHint({ plan, keepText, onKeepText }: Pick<Props, 'plan' | 'keepText' | 'onKeepText'>) {
  const head = findLmHead(plan.weights);
  if (!head) return null;
  const already = head.action === 'keep';
  return (
    <Alert variant="light" color={head.action === 'quantize' ? 'blue' : 'gray'} icon={<IconBulb size={18} />} p="sm" data-testid="lm-head-hint">
      <Group justify="space-between" wrap="nowrap" gap="sm">
        <Text size="sm" style={{ minWidth: 0, flex: 1 }}>
          {head.action === 'skip'
            ? <>The LM head <Text span ff="monospace" size="sm">{head.name}</Text> stays in full precision anyway: {head.reason}.</>
            : already
              ? <>The LM head <Text span ff="monospace" size="sm">{head.name}</Text> is kept in full precision.</>
              : <>Keeping the LM head <Text span ff="monospace" size="sm">{head.name}</Text> in full precision often recovers much of the quantization loss for {formatBytes(head.bytesBefore - head.bytesAfter)} more.</>}
        </Text>
        {head.action === 'quantize' && (
          <Button size="compact-sm" variant="light" onClick={() => onKeepText(toggleKeepPattern(keepText, head.name, true))} style={{ flexShrink: 0 }} data-testid="keep-lm-head">Keep the LM head</Button>
        )}
      </Group>
    </Alert>
  );
}

/** Every weight the plan lists, what the step will do with it, and keep toggles / keep patterns. */
export function QuantizeWeightsTable({ plan, keepText, onKeepText, keepError, disabled, overrides = [], onOverrides }: Props) {
  const [filter, setFilter] = useState<Filter>('all');
  const [all, setAll] = useState(false);
  const patterns = useMemo(() => parseKeepPatterns(keepText), [keepText]);
  const rows = filter === 'all' ? plan.weights : plan.weights.filter((w) => w.action === filter);
  const shown = all ? rows : rows.slice(0, ROWS);

  function toggle(w: QuantizePlanWeight, on: boolean) {
    onKeepText(toggleKeepPattern(keepText, w.name, on));
  }

  return (
    <Stack gap="md">
      <LmHeadHint plan={plan} keepText={keepText} onKeepText={onKeepText} />
      {overrides.length > 0 && onOverrides && <OverridesSummary overrides={overrides} onOverrides={onOverrides} />}
      <Textarea
        label="Keep patterns"
        description="Regular expressions on weight names, one per line; matching weights stay in full precision. The Keep switches below add exact-name patterns here."
        placeholder={'lm_head\n^model\\.layers\\.0\\.'}
        value={keepText}
        onChange={(e) => onKeepText(e.currentTarget.value)}
        autosize
        minRows={2}
        maxRows={8}
        spellCheck={false}
        classNames={{ input: 'mono-input' }}
        error={keepError}
        disabled={disabled}
        data-testid="keep-patterns"
      />
      <Paper withBorder radius="md" p="md">
        <Group justify="space-between" mb="sm" wrap="wrap" gap="xs">
          <Title order={4}>Weights</Title>
          <SegmentedControl size="xs" value={filter} onChange={(v) => setFilter(v as Filter)} data-testid="weights-filter"
            data={[
              { value: 'all', label: `All ${formatInteger(plan.weights.length)}` },
              { value: 'quantize', label: `Quantize ${formatInteger(plan.counts.quantize)}` },
              { value: 'keep', label: `Keep ${formatInteger(plan.counts.keep)}` },
              { value: 'skip', label: `Skip ${formatInteger(plan.counts.skip)}` },
            ]} />
        </Group>
        {/* The scrollbar stays visible (not only on hover): the table is taller than the box. */}
        <ScrollArea.Autosize mah={520} type="auto" offsetScrollbars="y" data-testid="weights-scroll">
          <Table stickyHeader highlightOnHover data-testid="weights-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Weight</Table.Th><Table.Th>Op</Table.Th><Table.Th>Shape</Table.Th><Table.Th>Action</Table.Th>
                <Table.Th ta="right">Size</Table.Th><Table.Th ta="center">Keep</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {shown.map((w, i) => {
                const exact = patterns.includes(exactNamePattern(w.name));
                const matching = matchingKeepPatterns(patterns, w.name);
                const byOther = w.action === 'keep' && !exact;
                return (
                  <Table.Tr key={`${w.name}/${w.node}/${i}`} data-testid="weight-row" data-action={w.action} data-bits={w.bits} data-name={w.name} className={w.action === 'skip' ? 'weight-skipped' : undefined}>
                    <Table.Td>
                      <Text size="sm" ff="monospace" className="break-at-separators" title={`node ${w.node}`}>{breakableName(w.name)}</Text>
                      {w.reason && <Text size="xs" c="dimmed" className="wrap-anywhere" data-testid="weight-reason">{w.reason}</Text>}
                    </Table.Td>
                    <Table.Td><Text size="sm">{w.op}</Text></Table.Td>
                    <Table.Td><Text size="sm" ff="monospace" style={{ whiteSpace: 'nowrap' }}>{formatShape(w.shape)}</Text></Table.Td>
                    <Table.Td>
                      <Tooltip label={w.override ? `An override gives it ${w.bits} bits: ${w.override}` : w.action === 'keep' ? 'Left in full precision' : ''} disabled={!w.override && w.action !== 'keep'}>
                        <Badge variant="light" color={w.override ? 'orange' : ACTION_COLOR[w.action]} style={{ whiteSpace: 'nowrap', overflow: 'visible', flexShrink: 0 }}
                          styles={{ label: { overflow: 'visible' } }} data-testid="weight-action">{actionWord(w)}</Badge>
                      </Tooltip>
                    </Table.Td>
                    <Table.Td ta="right">
                      <Text size="sm" style={{ whiteSpace: 'nowrap' }} title={`${formatInteger(w.bytesBefore)} → ${formatInteger(w.bytesAfter)} bytes`}>
                        {w.action === 'quantize' ? <>{formatBytes(w.bytesBefore)} → <b>{formatBytes(w.bytesAfter)}</b></> : formatBytes(w.bytesBefore)}
                      </Text>
                    </Table.Td>
                    <Table.Td ta="center">
                      {w.action !== 'skip' && (
                        <Tooltip label={byOther ? `Kept by the pattern ${matching.join(', ') || 'in the list'}; edit it above` : exact ? 'Quantize it again' : 'Keep this weight in full precision'}>
                          <span style={{ display: 'inline-flex' }}>
                            <Switch size="sm" checked={w.action === 'keep' || exact} disabled={disabled || byOther}
                              onChange={(e) => toggle(w, e.currentTarget.checked)} aria-label={`Keep ${w.name}`} data-testid="weight-keep-toggle" />
                          </span>
                        </Tooltip>
                      )}
                    </Table.Td>
                  </Table.Tr>
                );
              })}
              {rows.length === 0 && (
                <Table.Tr><Table.Td colSpan={6}><Text size="sm" c="dimmed">No weights in this group.</Text></Table.Td></Table.Tr>
              )}
            </Table.Tbody>
          </Table>
        </ScrollArea.Autosize>
        {rows.length > ROWS && (
          <Button variant="subtle" size="xs" mt="xs" onClick={() => setAll((a) => !a)}>
            {all ? `Show the first ${ROWS}` : `Show all ${formatInteger(rows.length)}`}
          </Button>
        )}
      </Paper>
    </Stack>
  );
}
