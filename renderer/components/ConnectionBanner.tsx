import { Alert, Code } from '@mantine/core';
import { IconPlugConnectedX } from '@tabler/icons-react';
import { useConnection } from '../hooks/useConnection.ts';

/** Serve mode lost (or never got) its connection to `whittle serve`. */
export function ConnectionBanner() {
  const { troubled, state } = useConnection();
  if (!troubled) return null;
  return (
    <Alert color="orange" variant="light" icon={<IconPlugConnectedX size={20} />} mb="md" data-testid="connection-banner"
      title={state === 'closed' ? 'Disconnected from Whittle' : 'Connecting to Whittle…'}>
      Whittle is not answering. If <Code>whittle serve</Code> was stopped or restarted, start it again and open the new
      URL it prints (the access token changes each time).
    </Alert>
  );
}
