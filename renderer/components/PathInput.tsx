import { Button, Text, TextInput } from '@mantine/core';
import { IconFolderOpen } from '@tabler/icons-react';
import { useRef, useState, type ReactNode } from 'react';
import type { CallParams } from '../../preload/contract.ts';
import { useApi } from '../hooks/useApi.ts';
import { useToast } from '../hooks/useToast.ts';
import { onAsync } from '../lib/async-handler.ts';

type Purpose = CallParams<'models.pickFile'>['purpose'];

interface PathInputProps {
  label: ReactNode;
  description?: ReactNode;
  placeholder?: string;
  value: string;
  onChange: (value: string) => void;
  purpose: Purpose;
  error?: ReactNode;
  testId: string;
  browseTestId?: string;
  onEnter?: () => void;
}

/**
 * A file path: typed, pasted, or chosen with the native dialog (`models.pickFile`). Where no dialog
 * exists (serve mode) the reason is shown under the field and the field gets the focus.
 */
export function PathInput({ label, description, placeholder, value, onChange, purpose, error, testId, browseTestId, onEnter }: PathInputProps) {
  const api = useApi();
  const toast = useToast();
  const input = useRef<HTMLInputElement>(null);
  const [reason, setReason] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function browse() {
    setBusy(true);
    try {
      const picked = await api.call('models.pickFile', { purpose });
      if (picked.path) {
        setReason(null);
        onChange(picked.path);
      } else if (picked.reason) {
        setReason(picked.reason);
        input.current?.focus();
      }
    } catch (e) {
      toast.error(e, 'Browse');
    } finally {
      setBusy(false);
    }
  }

  return (
    <div>
      <TextInput
        ref={input}
        label={label}
        description={description}
        placeholder={placeholder}
        value={value}
        onChange={(e) => onChange(e.currentTarget.value)}
        onKeyDown={(e) => { if (e.key === 'Enter' && onEnter) onEnter(); }}
        error={error}
        spellCheck={false}
        autoComplete="off"
        classNames={{ input: 'mono-input' }}
        rightSectionWidth={120}
        rightSectionPointerEvents="all"
        rightSection={
          <Button size="compact-sm" variant="light" mr={6} leftSection={<IconFolderOpen size={14} />} onClick={onAsync(browse)} loading={busy} data-testid={browseTestId ?? `${testId}-browse`}>
            Browse…
          </Button>
        }
        data-testid={testId}
      />
      {reason && <Text size="xs" c="yellow.8" mt={4} data-testid={`${testId}-reason`}>{reason}</Text>}
    </div>
  );
}
