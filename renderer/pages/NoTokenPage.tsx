import { Center, Code, Paper, Stack, Text, ThemeIcon, Title } from '@mantine/core';
import { IconKey } from '@tabler/icons-react';

/** Serve mode opened without the access token in the URL. */
export function NoTokenPage() {
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder radius="md" p="xl" maw={560} data-testid="no-token">
        <Stack gap="sm" align="center" ta="center">
          <ThemeIcon size={56} radius="xl" variant="light"><IconKey size={30} /></ThemeIcon>
          <Title order={2}>Open the URL printed by <Code fz="inherit">whittle serve</Code></Title>
          <Text c="dimmed">
            This page needs the access token that <Code>whittle serve</Code> puts in the address it prints
            (it ends in <Code>#token=…</Code>). Copy that whole address from the terminal into this tab.
          </Text>
        </Stack>
      </Paper>
    </Center>
  );
}
