/**
 * Dead letters summarised per burst. The functions host calls the webhook function once
 * per event, so a junk delivery of 5,000 events is 5,000 invocations in one process: each
 * letter joins its source's open batch and its invocation waits until the batch is
 * written (one document with counts by reason and the first letters). Nothing is
 * acknowledged before it is stored; a failed write fails every invocation in the batch
 * (Event Grid retries the delivery).
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../ports';
import type { DeadLetterRecord, DeadLetterStore, RefusedEvent } from './ports';

export interface DeadLetterBatching {
  /** Written once no letter of the source arrived for this long (ms). */
  idleMs: number;
  /** … or once the batch is this old (ms), so a steady trickle still ends. */
  maxAgeMs: number;
  /** … or once it holds this many letters. */
  maxLetters: number;
  /** Letters kept in full per record (the first, plus `more`). */
  samples: number;
}

export const DEAD_LETTER_BATCHING: DeadLetterBatching = { idleMs: 5, maxAgeMs: 100, maxLetters: 1000, samples: 20 };

interface Batch {
  letters: RefusedEvent[];
  ids: string[];
  reasons: DeadLetterRecord['reasons'];
  startedAt: number;
  timer?: NodeJS.Timeout;
  done: Promise<void>;
  settle: (error?: unknown) => void;
}

/** The summary of one batch. A lone letter keeps its own id; a burst's id is a hash of its letters' ids (the same burst again is not stored twice). */
export function summarise(letters: RefusedEvent[], ids: string[], reasons: DeadLetterRecord['reasons'], samples: number, receivedAt: Date): DeadLetterRecord {
  const first = letters[0]!;
  const id = ids.length === 1 ? first.id : `batch:${createHash('sha256').update([...ids].sort().join('\n')).digest('hex').slice(0, 40)}`;
  const more = letters.slice(1, samples).map(({ source: _s, ...rest }) => rest);
  return { ...first, id, receivedAt: receivedAt.toISOString(), count: ids.length, reasons: { ...reasons }, more };
}

export function summarisingDeadLetters(
  write: (record: DeadLetterRecord) => Promise<void>,
  clock: Clock,
  options: DeadLetterBatching = DEAD_LETTER_BATCHING,
): DeadLetterStore {
  // A Map: sources are event data.
  const open = new Map<string, Batch>();

  const flush = (source: string, batch: Batch): void => {
    if (open.get(source) === batch) open.delete(source);
    clearTimeout(batch.timer);
    clock
      .now()
      .then((receivedAt) => write(summarise(batch.letters, batch.ids, batch.reasons, options.samples, receivedAt)))
      .then(
      () => batch.settle(),
      (e: unknown) => batch.settle(e ?? new Error('dead letter write failed')),
    );
  };

  const schedule = (source: string, batch: Batch): void => {
    clearTimeout(batch.timer);
    const left = options.maxAgeMs - (Date.now() - batch.startedAt);
    batch.timer = setTimeout(() => flush(source, batch), Math.max(0, Math.min(options.idleMs, left)));
  };

  return {
    record(letter) {
      let batch = open.get(letter.source);
      if (!batch) {
        let settle!: Batch['settle'];
        const done = new Promise<void>((resolve, reject) => {
          settle = (error) => (error === undefined ? resolve() : reject(error));
        });
        batch = { letters: [], ids: [], reasons: {}, startedAt: Date.now(), done, settle };
        open.set(letter.source, batch);
      }
      if (batch.letters.length < options.samples) batch.letters.push(letter);
      batch.ids.push(letter.id);
      batch.reasons[letter.reason] = (batch.reasons[letter.reason] ?? 0) + 1;
      if (batch.ids.length >= options.maxLetters) flush(letter.source, batch);
      else schedule(letter.source, batch);
      return batch.done;
    },
  };
}
