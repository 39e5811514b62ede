/**
 * The job kinds whose due work the resume timer (`functions/resumeRotations.ts`)
 * advances: renewal first; tenant keys, key sets and incidents register the same way.
 */
import { describeError } from '../../errors';
import type { StepJob } from '../../domain/stepKernel';
import type { Logger } from '../../ports';
import { type JobKind, type ResumeReport, type ResumeRound, type StepRunner, isInjectedCrash } from './runner';

/** A registered kind, its job type erased: it only needs to resume its due work. */
export interface ResumableKind {
  readonly kind: string;
  /** At most `limit` due jobs; within a `round`, skipping the ids it took and stopping when it ends. */
  resumeDue(limit: number, round?: ResumeRound): Promise<ResumeReport>;
}

export function resumable<J extends StepJob<S>, S extends string, R>(runner: StepRunner, kind: JobKind<J, S, R>): ResumableKind {
  return { kind: kind.kind, resumeDue: (limit, round) => runner.resumeDue(kind, limit, round) };
}

/** `budgetEnded` is set only when the run stopped with work possibly still due. */
export type RegistryReport = ResumeReport & { kinds: Record<string, ResumeReport>; budgetEnded?: true };

export interface ResumeOptions {
  /** Wall-clock time a run may take (KEYTURN_RESUME_BUDGET_SECONDS); no job starts after it. */
  budgetMs?: number;
  /** Due jobs asked for per query. */
  batch?: number;
  /** A monotonic stopwatch in ms (real time, not the app's movable clock). */
  elapsedMs?: () => number;
}

/** Default budget: 240 s ends well inside the Functions host's 5-minute default timeout. */
export const DEFAULT_RESUME_BUDGET_MS = 240_000;
const BATCH = 50;

export class JobRegistry {
  private readonly kinds = new Map<string, ResumableKind>();

  private readonly budgetMs: number;
  private readonly batch: number;
  private readonly elapsedMs: () => number;

  constructor(
    private readonly log: Logger,
    options: ResumeOptions = {},
  ) {
    this.budgetMs = options.budgetMs ?? DEFAULT_RESUME_BUDGET_MS;
    this.batch = options.batch ?? BATCH;
    this.elapsedMs = options.elapsedMs ?? (() => performance.now());
  }

  register(kind: ResumableKind): this {
    if (this.kinds.has(kind.kind)) throw new Error(`job kind '${kind.kind}' is registered twice`);
    this.kinds.set(kind.kind, kind);
    return this;
  }

  /**
   * Resumes the due work of every kind, batch after batch, until none is due or the budget
   * ends (a job already started runs to its end). A kind whose due query fails does not
   * stop the others; the first such failure is thrown at the end (the timer's run fails
   * visibly, and the next run tries again).
   */
  async resumeDue(): Promise<RegistryReport> {
    const { budgetMs, batch } = this;
    const started = this.elapsedMs();
    const ended = () => this.elapsedMs() - started >= budgetMs;
    const report: RegistryReport = { due: 0, advanced: 0, errors: 0, kinds: {} };
    let failure: unknown;
    for (const [name, kind] of this.kinds) {
      const round: ResumeRound = { taken: new Set(), ended };
      const total: ResumeReport = { due: 0, advanced: 0, errors: 0 };
      let listed = true;
      try {
        // A batch that took nothing new means nothing (else) is due.
        while (!ended()) {
          const r = await kind.resumeDue(batch, round);
          total.due += r.due;
          total.advanced += r.advanced;
          total.errors += r.errors;
          if (r.due === 0) break;
        }
      } catch (e) {
        if (isInjectedCrash(e)) throw e;
        listed = total.due > 0;
        failure ??= e;
        this.log.error(`Due ${name} jobs could not be listed`, { kind: name, error: describeError(e) });
      }
      if (listed) report.kinds[name] = total;
      report.due += total.due;
      report.advanced += total.advanced;
      report.errors += total.errors;
    }
    if (ended()) {
      report.budgetEnded = true;
      this.log.warn('Resume run stopped at its time budget; the next run takes the rest', { budgetSeconds: budgetMs / 1000, advanced: report.advanced });
    }
    if (failure !== undefined) throw failure;
    return report;
  }
}
