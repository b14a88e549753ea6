import { Badge, Group, Loader, Menu, Progress, Text, UnstyledButton } from '@mantine/core';
import { useRunningJobs } from '../hooks/useJobs.ts';
import { formatPercent } from '../lib/format.ts';
import { phaseLabel, progressBar } from '../lib/job-state.ts';
import { href } from '../lib/route.ts';

/** "2 running" in the header; the menu lists each job with its progress and links to it. */
export function RunningJobsIndicator() {
  const running = useRunningJobs();
  if (running.length === 0) return null;
  return (
    <Menu position="bottom-end" width={300} withinPortal>
      <Menu.Target>
        <UnstyledButton aria-label="Running jobs" data-testid="running-jobs">
          <Badge variant="light" size="lg" leftSection={<Loader size={12} />} style={{ cursor: 'pointer' }}>
            <span data-testid="running-jobs-count">{running.length}</span> running
          </Badge>
        </UnstyledButton>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>Running jobs</Menu.Label>
        {running.map((job) => {
          const p = job.progress;
          const pct = progressBar(p, false).percent;
          const link = href.evaluate('', job.experimentId !== null ? { jobId: job.jobId, experimentId: job.experimentId } : undefined);
          return (
            <Menu.Item key={job.jobId} component="a" href={link} data-testid="running-job">
              <Group justify="space-between" gap="xs" wrap="nowrap">
                <Text size="sm" truncate>{p ? phaseLabel(p.phase) : 'Starting…'}{job.experimentId !== null ? ` · #${job.experimentId}` : ''}</Text>
                <Text size="xs" c="dimmed">{pct === null ? '…' : formatPercent(pct)}</Text>
              </Group>
              <Progress value={pct ?? 100} animated={pct === null} size="xs" mt={4} />
            </Menu.Item>
          );
        })}
      </Menu.Dropdown>
    </Menu>
  );
}
