/**
 * Appending to an incident's chain. The head is found by reading forward from the last
 * head this process saw (point reads of `{incidentId}:{seq+1}`); the entry is created
 * only if its seq is free, so of two writers racing for seq N one wins and the other
 * re-reads the head and appends N+1: the chain cannot fork.
 *
 * After the entry, a checkpoint when due (`checkpointDue`): a checkpoint is written only
 * for an entry that exists, so it may lag the chain (a crash between the two) but never
 * lead it; the next append or verify writes the one that was missed.
 */
import { type Actor } from '../../domain/incident';
import { type Checkpoint, type EntryDoc, GENESIS_HASH, checkpointDue, makeEntry, nextCheckpoint } from '../../domain/incidentChain';
import type { Clock, FaultPoints, Logger } from '../../ports';
import type { CheckpointStore, EntryStore } from './ports';

export interface EntryInput {
  event: string;
  actor: Actor;
  claimedBy: string | null;
  evidence: Record<string, unknown>;
}

export interface LogDeps {
  entries: EntryStore;
  checkpoints: CheckpointStore;
  clock: Clock;
  faults: FaultPoints;
  log: Logger;
  /** KEYTURN_INCIDENT_CHECKPOINT_EVERY: a checkpoint at least every this many entries. */
  checkpointEvery: number;
}

type Head = { seq: number; hash: string };
const MAX_RACES = 200;

/** One per process: the heads and checkpoints it last saw are hints (read forward from), never trusted as final. */
export class IncidentLog {
  private readonly heads = new Map<string, Head>();
  private readonly checkpointsSeen = new Map<string, Checkpoint | null>();

  constructor(private readonly deps: LogDeps) {}

  /** The last entry (seq 0 and the genesis hash for an empty chain). */
  async head(subject: string): Promise<Head> {
    let head = this.heads.get(subject) ?? { seq: 0, hash: GENESIS_HASH };
    for (;;) {
      const next = await this.deps.entries.read(subject, head.seq + 1);
      if (!next) break;
      head = { seq: next.seq, hash: next.hash };
    }
    this.heads.set(subject, head);
    return head;
  }

  /** Appends one entry at the head; `state` (the incident's, after this entry) decides the checkpoint. */
  async append(subject: string, input: EntryInput, options: { state?: string; checkpoint?: boolean } = {}): Promise<EntryDoc> {
    return this.appendAt(subject, input, undefined, options);
  }

  /** Appends the entry unless one carrying `ref` is already on the chain (a retried step or outbox item). */
  async appendOnce(subject: string, ref: string, input: EntryInput, options: { state?: string; checkpoint?: boolean } = {}): Promise<EntryDoc> {
    return this.appendAt(subject, { ...input, evidence: { ...input.evidence, ref } }, ref, options);
  }

  /**
   * The append: read the head, then (with a `ref`) look for the entry, then create at
   * head+1. The look comes after the head was read, so a concurrent writer's entry with
   * that ref is either found or sits at head+1 or later — then head+1 is taken, the create
   * fails and the next round finds it: two flushers of one outbox append it once.
   */
  private async appendAt(subject: string, input: EntryInput, ref: string | undefined, options: { state?: string; checkpoint?: boolean }): Promise<EntryDoc> {
    let entry: EntryDoc | undefined;
    for (let race = 0; race < MAX_RACES && !entry; race++) {
      const head = await this.head(subject);
      const existing = ref === undefined ? undefined : await this.deps.entries.byRef(subject, ref);
      if (existing) return existing;
      const candidate = makeEntry({ incidentId: subject, at: (await this.deps.clock.now()).toISOString(), ...input }, head);
      if (await this.deps.entries.createOnly(candidate)) entry = candidate;
    }
    if (!entry) throw new Error(`incident ${subject}: the head kept moving; try again`);
    this.heads.set(subject, { seq: entry.seq, hash: entry.hash });
    if (options.checkpoint !== false) await this.checkpointIfDue(subject, options.state);
    return entry;
  }

  /**
   * Writes a checkpoint of the head when one is due; `last` is the latest checkpoint when
   * the caller has read it (verify; null: it found none, whatever this process saw). True
   * when it wrote one.
   */
  async checkpointIfDue(subject: string, state?: string, last?: Checkpoint | null): Promise<boolean> {
    const head = await this.head(subject);
    const previous = last === undefined ? await this.lastCheckpoint(subject) : (last ?? undefined);
    if (!checkpointDue({ ...head, ...(state !== undefined ? { state } : {}) }, previous, this.deps.checkpointEvery)) return false;
    this.deps.faults.hit('incident-checkpoint:before');
    const checkpoint = nextCheckpoint({ incidentId: subject, ...head, ...(state !== undefined ? { state } : {}) }, previous, await this.deps.clock.now());
    await this.deps.checkpoints.append(checkpoint);
    this.checkpointsSeen.set(subject, checkpoint);
    return true;
  }

  private async lastCheckpoint(subject: string): Promise<Checkpoint | undefined> {
    if (!this.checkpointsSeen.has(subject)) this.checkpointsSeen.set(subject, (await this.deps.checkpoints.latest(subject)) ?? null);
    return this.checkpointsSeen.get(subject) ?? undefined;
  }
}
