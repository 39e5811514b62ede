import { KeyturnError } from '../errors';
import type { FaultPoints } from '../ports';

/** Thrown at an armed fault point: tests use it to crash a worker between two steps. */
export class InjectedFault extends KeyturnError {
  constructor(readonly point: string) {
    super('INJECTED_FAULT', `Injected fault at '${point}'`, { point });
    this.name = 'InjectedFault';
  }
}

/**
 * Fault points armed by the KEYTURN_FAULTS setting (test only). `point` fires every
 * time; `point*1` fires once per process, so a restarted worker gets past it.
 */
export function armedFaults(points: string[]): FaultPoints {
  const once = new Map<string, number>();
  const always = new Set<string>();
  for (const p of points) {
    const [name, count] = p.split('*');
    if (count) once.set(name!, Number(count));
    else always.add(name!);
  }
  return {
    hit(point) {
      if (always.has(point)) throw new InjectedFault(point);
      const left = once.get(point);
      if (left !== undefined && left > 0) {
        once.set(point, left - 1);
        throw new InjectedFault(point);
      }
    },
  };
}
