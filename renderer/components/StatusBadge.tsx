import { Badge } from '@mantine/core';
import type { ExperimentStatus } from '../../preload/contract.ts';

const COLOR: Record<ExperimentStatus, string> = {
  queued: 'gray', running: 'blue', done: 'green', failed: 'red', cancelled: 'gray', interrupted: 'orange',
};

export function StatusBadge({ status, testId }: { status: ExperimentStatus; testId?: string }) {
  return <Badge color={COLOR[status]} variant="light" style={{ overflow: 'visible' }} styles={{ label: { overflow: 'visible' } }} data-testid={testId}>{status}</Badge>;
}
