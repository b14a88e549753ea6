import { Button, Menu, Text } from '@mantine/core';
import { IconChevronDown, IconGridDots } from '@tabler/icons-react';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { formatDateTime } from '../lib/format.ts';
import { href } from '../lib/route.ts';

/** "Sweeps": the newest sweep groups, each opening its page (members, resume, compare); nothing when there are none. */
export function RecentSweeps() {
  const { data, reload } = useCall('sweeps.list', { limit: 20 });
  useEvent('history.changed', (e) => { if (e.experimentId === null) reload({ quiet: true }); });
  if (!data || data.length === 0) return null;
  return (
    <Menu position="bottom-start" withinPortal>
      <Menu.Target>
        <Button size="compact-sm" variant="light" leftSection={<IconGridDots size={14} />} rightSection={<IconChevronDown size={14} />} data-testid="history-sweeps">
          Sweeps ({data.length})
        </Button>
      </Menu.Target>
      <Menu.Dropdown>
        {data.map((g) => (
          <Menu.Item key={g.id} component="a" href={href.sweep(g.id)} data-testid="history-sweep-link">
            <Text size="sm">{g.name}</Text>
            <Text size="xs" c="dimmed">#{g.id} · {g.members} experiment{g.members === 1 ? '' : 's'} · {formatDateTime(g.created)}</Text>
          </Menu.Item>
        ))}
      </Menu.Dropdown>
    </Menu>
  );
}
