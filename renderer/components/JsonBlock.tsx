import { ActionIcon, Box, Code, CopyButton, Tooltip } from '@mantine/core';
import { IconCheck, IconCopy } from '@tabler/icons-react';

/** Pretty-printed JSON with a copy button. */
export function JsonBlock({ value, testId, maxHeight = 420 }: { value: unknown; testId?: string; maxHeight?: number }) {
  const text = JSON.stringify(value, null, 2) ?? 'null';
  return (
    <Box pos="relative">
      <Code block data-testid={testId} style={{ maxHeight, overflow: 'auto' }}>{text}</Code>
      <CopyButton value={text}>
        {({ copied, copy }) => (
          <Tooltip label={copied ? 'Copied' : 'Copy'}>
            <ActionIcon variant="default" pos="absolute" top={8} right={8} onClick={copy} aria-label="Copy JSON" data-testid={testId ? `${testId}-copy` : undefined}>
              {copied ? <IconCheck size={16} /> : <IconCopy size={16} />}
            </ActionIcon>
          </Tooltip>
        )}
      </CopyButton>
    </Box>
  );
}
