import { Button, Collapse, Group } from '@mantine/core';
import { IconCode, IconPlayerPlay } from '@tabler/icons-react';
import { useState } from 'react';
import { JsonBlock } from './JsonBlock.tsx';

/** The foot of a job form: "Show recipe" (the JSON a run would submit) and Run. */
export function RecipeActions({ recipe, onRun, starting, running, runTestId }: {
  recipe: unknown;
  onRun: () => void;
  starting: boolean;
  running: boolean;
  runTestId: string;
}) {
  const [showRecipe, setShowRecipe] = useState(false);
  return (
    <>
      <Group justify="space-between">
        <Button variant="subtle" leftSection={<IconCode size={16} />} onClick={() => setShowRecipe((s) => !s)} data-testid="show-recipe">
          {showRecipe ? 'Hide recipe' : 'Show recipe'}
        </Button>
        <Button leftSection={<IconPlayerPlay size={16} />} onClick={onRun} loading={starting} disabled={running} data-testid={runTestId}>
          {running ? 'Running…' : 'Run'}
        </Button>
      </Group>
      <Collapse expanded={showRecipe}>
        <JsonBlock value={recipe} testId="recipe-json" />
      </Collapse>
    </>
  );
}
