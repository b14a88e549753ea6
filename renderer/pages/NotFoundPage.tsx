import { Anchor } from '@mantine/core';
import { IconMapOff } from '@tabler/icons-react';
import { EmptyNote } from '../components/EmptyNote.tsx';
import { href } from '../lib/route.ts';

export function NotFoundPage({ hash }: { hash: string }) {
  return (
    <EmptyNote icon={<IconMapOff size={24} />} title="No such page" testId="not-found">
      Nothing lives at “{hash}”. <Anchor href={href.home()}>Go to the start page</Anchor>.
    </EmptyNote>
  );
}
