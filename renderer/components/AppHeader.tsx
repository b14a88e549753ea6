import { Anchor, Group, Text } from '@mantine/core';
import { IconChartDots3, IconChartLine, IconHistory, IconHome, IconSchool, IconScissors, IconStack2 } from '@tabler/icons-react';
import type { ReactNode } from 'react';
import type { Route } from '../lib/route.ts';
import { href } from '../lib/route.ts';
import { RunningJobsIndicator } from './RunningJobsIndicator.tsx';
import { ThemeToggle } from './ThemeToggle.tsx';

function NavLink({ to, active, icon, label, testId }: { to: string; active: boolean; icon: ReactNode; label: string; testId: string }) {
  return (
    <Anchor href={to} className="nav-link" data-active={active || undefined} aria-current={active ? 'page' : undefined} underline="never" data-testid={testId}>
      <Group gap={6} wrap="nowrap">{icon}<span>{label}</span></Group>
    </Anchor>
  );
}

export function AppHeader({ route }: { route: Route }) {
  const inHistory = route.name === 'history' || route.name === 'historyDetail' || route.name === 'compare' || route.name === 'pareto' || route.name === 'sweep';
  const inQuantize = route.name === 'quantize';
  const inPrune = route.name === 'prune';
  const inTrain = route.name === 'train';
  const inDistill = route.name === 'distill';
  return (
    <Group h="100%" px="md" justify="space-between" wrap="nowrap">
      <Group gap="lg" wrap="nowrap">
        <Anchor href={href.home()} underline="never" c="inherit" aria-label="Whittle home">
          <Group gap={8} wrap="nowrap">
            <IconScissors size={22} stroke={1.8} className="logo" />
            <Text fw={800} size="lg">Whittle</Text>
          </Group>
        </Anchor>
        <Group gap={4} wrap="nowrap" component="nav">
          <NavLink to={href.home()} active={!inHistory && !inQuantize && !inPrune && !inTrain && !inDistill} icon={<IconHome size={16} />} label="Models" testId="nav-home" />
          <NavLink to={href.quantize('')} active={inQuantize} icon={<IconStack2 size={16} />} label="Quantize" testId="nav-quantize" />
          <NavLink to={href.prune('')} active={inPrune} icon={<IconChartDots3 size={16} />} label="Prune" testId="nav-prune" />
          <NavLink to={href.train('')} active={inTrain} icon={<IconChartLine size={16} />} label="Train" testId="nav-train" />
          <NavLink to={href.distill('')} active={inDistill} icon={<IconSchool size={16} />} label="Distill" testId="nav-distill" />
          <NavLink to={href.history()} active={inHistory} icon={<IconHistory size={16} />} label="History" testId="nav-history" />
        </Group>
      </Group>
      <Group gap="sm" wrap="nowrap">
        <RunningJobsIndicator />
        <ThemeToggle />
      </Group>
    </Group>
  );
}
