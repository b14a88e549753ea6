import { Alert, Text } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import type { ReactNode } from 'react';
import type { ErrorShape } from '../../preload/contract.ts';
import { errorHint, errorTitleFor } from '../lib/errors.ts';

/** A typed error, titled in words ("Not a readable ONNX model"), with the error's own message. */
export function ErrorAlert({ error, testId = 'error', children }: { error: ErrorShape; testId?: string; children?: ReactNode }) {
  const hint = errorHint(error.code, error.details);
  return (
    <Alert color={error.code === 'CANCELLED' ? 'gray' : 'red'} variant="light" title={errorTitleFor(error)} icon={<IconAlertTriangle size={20} />} data-testid={testId} data-error-code={error.code}>
      <Text size="sm" data-testid={`${testId}-message`} className="wrap-anywhere">{error.message}</Text>
      {hint && <Text size="sm" c="dimmed" mt={4}>{hint}</Text>}
      {children}
    </Alert>
  );
}
