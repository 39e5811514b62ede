/** One in-memory world for part 2's unit tests; `host(points)` is one "process" with its own runner and fault points. */
import { armedFaults } from '../../../shared/adapters/faults';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { BackupService } from '../../../shared/services/tenants/backups';
import { EscrowService } from '../../../shared/services/tenants/escrow';
import { ExportService } from '../../../shared/services/tenants/exports';
import { RestoreService } from '../../../shared/services/tenants/restore';
import { TenantService } from '../../../shared/services/tenants/tenantService';
import { FakeClock, FakeTenants, VAULT, defaultPolicies, silentLog, fakeCreator } from '../tenants/fakes';
import { FakeBackups, FakeBlobs, FakeExports, FakeNotifier, FakeRestores, OpsVault } from './fakes';

export const HOUR = 3_600_000;
export const LEASE_MS = 300_000;

export function world(options: { minWaitMs?: number; escrow?: boolean } = {}) {
  const clock = new FakeClock(new Date('2026-05-01T00:00:00Z'));
  const vault = new OpsVault(clock);
  const keys = vault.port();
  const tenants = new FakeTenants();
  const blobs = new FakeBlobs();
  const backups = new FakeBackups();
  const restores = new FakeRestores();
  const exportStore = new FakeExports();
  const notifier = new FakeNotifier();
  const escrow = new EscrowService({ keys, blobs, policies: defaultPolicies, settings: { vaultUrl: VAULT, keyName: 'keyturn-tenant-escrow', keyBits: 2048 } });
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 365 * 24 * HOUR, changeoverMs: 24 * HOUR };
  const tenantDeps = { tenants, policies: defaultPolicies, keys, clock, log: silentLog, settings, creates: fakeCreator(clock), ...(options.escrow === false ? {} : { escrow }) };
  const service = new TenantService(tenantDeps);
  let generation = 0;
  const host = (points: string[] = []) => {
    const runner = new StepRunner({ clock, faults: armedFaults(points), log: silentLog, owner: `host-${++generation}` });
    const base = { tenants, keys, blobs, backups, notifier, clock, log: silentLog };
    const jobs = { runner, leaseMs: LEASE_MS, maxAttempts: 5 };
    return {
      runner,
      backups: new BackupService(base),
      restore: new RestoreService({ ...base, ...jobs, restores }),
      exports: new ExportService({ ...base, ...jobs, exports: exportStore, escrow, settings: { expiryMs: 24 * HOUR, minWaitMs: options.minWaitMs ?? 0 } }),
    };
  };
  return { clock, vault, keys, tenants, blobs, backups, restores, exports: exportStore, notifier, escrow, service, tenantDeps, host };
}
