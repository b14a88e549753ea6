import { Stack, Text, ThemeIcon } from '@mantine/core';
import type { ReactNode } from 'react';

/** What a list shows when there is nothing in it yet, with a way forward. */
export function EmptyNote({ icon, title, children, testId }: { icon: ReactNode; title: string; children?: ReactNode; testId?: string }) {
  return (
    <Stack align="center" gap="xs" py="xl" data-testid={testId}>
      <ThemeIcon variant="light" size={48} radius="xl" color="gray">{icon}</ThemeIcon>
      <Text fw={600}>{title}</Text>
      {children && <Text size="sm" c="dimmed" ta="center" maw={480}>{children}</Text>}
    </Stack>
  );
}
