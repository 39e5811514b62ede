/**
 * The soak run (`npm run soak`, docs/reliability.md) at a small size, in CI: two functions
 * hosts on one stack, 8 managed secrets due at once, a shuffled flood with 30 % duplicates,
 * 20 % Key Vault faults, one host killed and restarted mid-flood. The four counts must be 0,
 * and every secret must have been renewed (zeros from a run that renewed nothing prove nothing).
 *
 * It runs the compiled bench (`dist/bench/soak.js`, built by `npm test`): the bench finds the
 * host and app folders relative to its own compiled location.
 */
import { join } from 'node:path';
import type { SoakOptions, SoakReport } from '../../bench/soak';
import { REPO_ROOT } from '../helpers/host';

const { soak } = require(join(REPO_ROOT, 'dist', 'bench', 'soak.js')) as { soak(o: SoakOptions): Promise<SoakReport> };

const OPTIONS: SoakOptions = { secrets: 8, faults: 0.2, duplicates: 0.3, renews: 0, restart: true, maxSeconds: 90, seed: 7 };

test('soak, small: no double rotation, never zero enabled versions, no pending copy left enabled, no 5xx', async () => {
  const started = Date.now();
  const r = await soak(OPTIONS);
  const counts = {
    doubleRotations: r.doubleRotations,
    zeroEnabledMoments: r.zeroEnabledMoments,
    pendingEnabledAfterPromotion: r.pendingEnabledAfterPromotion,
    unexpected5xx: r.unexpected5xx,
  };
  const facts = `renewed ${r.renewed}/${OPTIONS.secrets} in ${r.seconds.toFixed(1)} s, ${r.samples} samples; answers ${JSON.stringify(r.statuses)}`;
  expect({ ...counts, facts }).toEqual({ doubleRotations: 0, zeroEnabledMoments: 0, pendingEnabledAfterPromotion: 0, unexpected5xx: 0, facts });
  expect(r.renewed).toBe(OPTIONS.secrets);
  expect(r.samples).toBeGreaterThan(0);
  expect(Date.now() - started).toBeLessThan(170_000);
}, 180_000);
