/**
 * The control flow every compression wizard shares (quantize, prune): the form and its issues, the
 * prefill (a stored experiment's recipe, else the bundled sample's files), the model check when leaving
 * the Model step, starting the job (checked here, then by the server's recipe schema), following it, and
 * moving to the comparison once it is done. What differs per technique comes in the `WizardSpec`.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { ErrorShape, ExperimentDetail, Sample } from '../../preload/contract.ts';
import type { QuantizeOutcome } from '../components/QuantizeResult.tsx';
import { reportRejection } from '../lib/async-handler.ts';
import { toUiError } from '../lib/errors.ts';
import type { Issues } from '../lib/form-issues.ts';
import { jobPhase } from '../lib/job-state.ts';
import { layoutOfRecipe, withLayout } from '../lib/output-layout.ts';
import { fetchPrefill } from '../lib/prefill.ts';
import { calibrationTextOf, withoutSampleTexts, withSampleDefaults } from '../lib/sample-defaults.ts';
import { experimentNameOf } from '../../preload/naming.ts';
import type { OutputLayout } from '../../preload/recipe.ts';
import { useApi } from './useApi.ts';
import { useJob, useJobStore } from './useJobs.ts';
import { replaceHash } from './useRoute.ts';

/** The fields every wizard form has. */
export interface WizardForm {
  modelPath: string;
  tokenizerPath: string;
  textPath: string;
  calibText: string;
  name: string;
}

export interface WizardSpec<F extends WizardForm, I extends Issues<string>> {
  /** Step indices: the first, the one after the model check, the run step and the comparison. */
  steps: { model: number; method: number; run: number; result: number };
  initialForm(path: string): F;
  formFromRecipe(recipe: unknown): F | null;
  validate(form: F): I;
  issuesForStep(issues: I, step: number): I;
  firstStepWithIssues(issues: I): number;
  issuesFromServer(list: readonly { path: string; message: string }[]): I;
  buildRecipe(form: F): unknown;
  defaultName(form: F): string;
  /** The wizard's address, attached to a job when given. */
  href(modelPath: string, job?: { jobId?: string; experimentId: number }): string;
}

export { calibrationTextOf, withoutSampleTexts, withSampleDefaults } from '../lib/sample-defaults.ts';

const hasIssues = (issues: Issues<string>): boolean => Object.values(issues).some(Boolean);

export function useRecipeWizard<F extends WizardForm, I extends Issues<string>>(
  spec: WizardSpec<F, I>,
  { path, jobId, experimentId, from = null }: {
    path: string; jobId: string | null; experimentId: number | null;
    /** Edit and re-run: start from this experiment's recipe (every field set from it), attached to no job. */
    from?: number | null;
  },
) {
  const api = useApi();
  const store = useJobStore();
  const { steps } = spec;
  const [form, setForm] = useState<F>(() => spec.initialForm(path));
  const [samples, setSamples] = useState<Sample[]>([]);
  const editing = from !== null && !jobId && experimentId === null;
  const [active, setActive] = useState<number>(jobId || experimentId ? steps.run : editing ? steps.method : steps.model);
  const [issues, setIssues] = useState<I>({} as I);
  const [checked, setChecked] = useState(false);
  const [checking, setChecking] = useState(false);
  const [modelError, setModelError] = useState<ErrorShape | null>(null);
  const [startError, setStartError] = useState<ErrorShape | null>(null);
  const [starting, setStarting] = useState(false);
  const [stored, setStored] = useState<ExperimentDetail | null>(null);
  /** The output folder's layout (the Run step's choice), set into the recipe's `output.layout`. */
  const [layout, setLayout] = useState<OutputLayout>('plain');
  const job = useJob(jobId, experimentId);
  const phase = job ? jobPhase(job) : null;
  const running = phase === 'starting' || phase === 'running';

  // Prefill: the experiment's stored recipe when attached to one (re-run, compare from the history), else the sample's files.
  useEffect(() => {
    let alive = true;
    const prefill = async (): Promise<void> => {
      try {
        await prefillFrom();
      } catch (e) {
        reportRejection(e);
      }
    };
    const prefillFrom = async (): Promise<void> => {
      const { samples: list, stored: detail } = await fetchPrefill(api, editing ? from : experimentId);
      if (!alive) return;
      setSamples(list);
      const fromRecipe = detail ? spec.formFromRecipe(detail.recipe) : null;
      if (detail && !jobId && !editing) {
        // Attached by experiment only (from the history): follow the job if it still runs.
        const live = (await api.call('jobs.list', {}).catch(() => [])).find((j) => j.experimentId === experimentId);
        if (!alive) return;
        if (live) replaceHash(spec.href(detail.modelPath, live));
        else {
          setStored(detail);
          if (detail.status === 'done') setActive(steps.result);
        }
      }
      // A recipe this wizard cannot read (another kind, an older schema) leaves the sample defaults, from the first step.
      if (editing && !fromRecipe) setActive(steps.model);
      setForm((f) => fromRecipe ?? withSampleDefaults(f, list));
      if (fromRecipe && detail) setLayout(layoutOfRecipe(detail.recipe));
    };
    void prefill();
    return () => { alive = false; };
    // Once per visit (the page is re-created on navigation); later URL changes come from this page.
  }, [api]);

  // A new step starts at the top of the page, not at the scroll position the previous step was left at.
  const shownStep = useRef(active);
  useEffect(() => {
    if (shownStep.current === active) return;
    shownStep.current = active;
    window.scrollTo({ top: 0, left: 0 });
  }, [active]);

  // A job that finishes well moves the wizard to the comparison (once per job).
  const advancedFor = useRef<string | null>(null);
  useEffect(() => {
    if (!job || advancedFor.current === job.jobId) return;
    if (job.finished?.status === 'done' && job.result) {
      advancedFor.current = job.jobId;
      setActive(steps.result);
    }
  }, [job]);

  const outcome: QuantizeOutcome | null = job?.result
    ?? (!jobId && stored && stored.status === 'done' ? { metrics: stored.metrics, artefacts: stored.artefacts, details: stored.details } : null);
  const recipe = useMemo(() => withLayout(spec.buildRecipe(form), layout), [form, layout]);
  /** The name the experiment gets when the user types none: the one naming function the job service and the CLI use. */
  const defaultName = useMemo(() => experimentNameOf(recipe) ?? spec.defaultName(form), [recipe]);

  function change(next: F) {
    const sample = samples.find((s) => s.modelPath === next.modelPath.trim());
    if (sample && next.modelPath !== form.modelPath && !next.tokenizerPath) next = { ...next, tokenizerPath: sample.tokenizerPath };
    if (next.modelPath !== form.modelPath) next = withoutSampleTexts(next, form.modelPath, samples);
    if (next.modelPath !== form.modelPath) setModelError(null);
    setForm(next);
    if (checked) setIssues(spec.validate(next));
  }

  function pickSample(s: Sample) {
    change({ ...form, modelPath: s.modelPath, tokenizerPath: s.tokenizerPath, textPath: s.textPath, calibText: calibrationTextOf(s) });
  }

  async function next() {
    setChecked(true);
    const all = spec.validate(form);
    setIssues(all);
    if (hasIssues(spec.issuesForStep(all, active))) return;
    if (active === steps.model) {
      setChecking(true);
      setModelError(null);
      try {
        await api.call('models.inspect', { path: form.modelPath.trim() });
      } catch (e) {
        setModelError(toUiError(e));
        return;
      } finally {
        setChecking(false);
      }
    }
    setActive((a) => Math.min(a + 1, steps.run));
  }

  async function run() {
    setChecked(true);
    setStartError(null);
    const local = spec.validate(form);
    setIssues(local);
    const bad = spec.firstStepWithIssues(local);
    if (bad >= 0) {
      if (bad < steps.run) setActive(bad);
      return;
    }
    setStarting(true);
    try {
      const verdict = await api.call('recipes.validate', { recipe });
      if (!verdict.ok) {
        const server = spec.issuesFromServer(verdict.issues);
        setIssues(server);
        const at = spec.firstStepWithIssues(server);
        if (at >= 0 && at < steps.run) setActive(at);
        return;
      }
      const started = await api.call('jobs.start', { recipe, name: form.name.trim() || defaultName });
      store.track(started.jobId, started.experimentId);
      replaceHash(spec.href(form.modelPath.trim(), started));
    } catch (e) {
      setStartError(toUiError(e));
    } finally {
      setStarting(false);
    }
  }

  function again() {
    setStored(null);
    setStartError(null);
    setActive(steps.method);
    replaceHash(spec.href(form.modelPath.trim()));
  }

  return {
    form, samples, active, setActive, issues: checked ? issues : ({} as I), checking, modelError, startError, starting, stored, job, running,
    outcome, recipe, defaultName, change, pickSample, next, run, again, layout, setLayout,
  };
}
