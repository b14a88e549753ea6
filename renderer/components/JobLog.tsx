import { Box, ScrollArea, Text } from '@mantine/core';
import { useEffect, useRef } from 'react';
import type { LogLine } from '../../preload/contract.ts';

const LEVEL_COLOR: Record<LogLine['level'], string | undefined> = { debug: 'dimmed', info: undefined, warn: 'yellow.7', error: 'red.6' };

function timeOf(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toTimeString().slice(0, 8);
}

/** Log lines in a scroll box that follows the newest line unless the user scrolled up. */
export function JobLog({ lines, height = 220, testId = 'job-log' }: { lines: readonly Pick<LogLine, 'seq' | 'time' | 'level' | 'text'>[]; height?: number; testId?: string }) {
  const viewport = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);

  useEffect(() => {
    const el = viewport.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  return (
    <ScrollArea.Autosize mah={height} mih={64} viewportRef={viewport} type="auto" className="log-box" data-testid={testId}
      onScrollPositionChange={({ y }) => {
        const el = viewport.current;
        if (el) pinned.current = y + el.clientHeight >= el.scrollHeight - 8;
      }}>
      <Box p="xs">
        {lines.length === 0 && <Text size="xs" c="dimmed">No log lines yet.</Text>}
        {lines.map((l, i) => (
          <Text key={`${l.seq}/${i}`} size="xs" ff="monospace" c={LEVEL_COLOR[l.level]} className="log-line" data-level={l.level}>
            <span className="log-time">{timeOf(l.time)}</span> {l.text}
          </Text>
        ))}
      </Box>
    </ScrollArea.Autosize>
  );
}
