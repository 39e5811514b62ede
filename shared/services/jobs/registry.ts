/**
 * The job kinds whose due work the resume timer (`functions/resumeRotations.ts`)
 * advances: renewal first; tenant keys, key sets and incidents register the same way.
 */
import { describeError } from '../../errors';
import type { StepJob } from '../../domain/stepKernel';
import type { Logger } from '../../ports';
import { type JobKind, type ResumeReport, type StepRunner, isInjectedCrash } from './runner';

/** A registered kind, its job type erased: it only needs to resume its due work. */
export interface ResumableKind {
  readonly kind: string;
  resumeDue(limit: number): Promise<ResumeReport>;
}

export function resumable<J extends StepJob<S>, S extends string, R>(runner: StepRunner, kind: JobKind<J, S, R>): ResumableKind {
  return { kind: kind.kind, resumeDue: (limit) => runner.resumeDue(kind, limit) };
}

export type RegistryReport = ResumeReport & { kinds: Record<string, ResumeReport> };

export class JobRegistry {
  private readonly kinds = new Map<string, ResumableKind>();

  constructor(private readonly log: Logger) {}

  register(kind: ResumableKind): this {
    if (this.kinds.has(kind.kind)) throw new Error(`job kind '${kind.kind}' is registered twice`);
    this.kinds.set(kind.kind, kind);
    return this;
  }

  /**
   * Resumes the due work of every kind, `limit` jobs per kind at most. A kind whose due
   * query fails does not stop the others; the first such failure is thrown at the end
   * (the timer's run fails visibly, and the next run tries again).
   */
  async resumeDue(limit = 50): Promise<RegistryReport> {
    const report: RegistryReport = { due: 0, advanced: 0, errors: 0, kinds: {} };
    let failure: unknown;
    for (const [name, kind] of this.kinds) {
      try {
        const r = await kind.resumeDue(limit);
        report.kinds[name] = r;
        report.due += r.due;
        report.advanced += r.advanced;
        report.errors += r.errors;
      } catch (e) {
        if (isInjectedCrash(e)) throw e;
        failure ??= e;
        this.log.error(`Due ${name} jobs could not be listed`, { kind: name, error: describeError(e) });
      }
    }
    if (failure !== undefined) throw failure;
    return report;
  }
}
