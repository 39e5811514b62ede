/**
 * A host the Key Vault emulator dropped as a clock listener (after three notices it could
 * not answer in time) registers again on its next clock check and follows the clock again,
 * including a move it missed while dropped; and the stack says so loudly when it drops one.
 */
import { requestJson } from '../../../local/httpJson';
import { listenerDroppedLine } from '../../../local/stack';
import { startHostProcess, pollUntil, type HostProcess } from '../../helpers/host';
import { startTestVault, type TestVault } from '../../helpers/keyvault';
import { EffectsFile } from './fixtureEffects';

const DAY_S = 86_400;

describe('local host: following the emulator clock after being dropped', () => {
  const effects = new EffectsFile();
  const dropped: { url: string; reason: string }[] = [];
  let vault: TestVault;
  let host: HostProcess;
  let clockUrl: string;
  let listenerUrl: string;

  const listeners = async (): Promise<string[]> =>
    ((await requestJson(`${clockUrl}/listeners`, { ca: vault.emulator.ca })).body as { listeners: string[] }).listeners;
  const drop = async (url: string) => {
    const res = await requestJson(`${clockUrl}/listeners`, { method: 'DELETE', body: { url }, ca: vault.emulator.ca });
    expect(res.status).toBe(200);
  };
  const pastDueRuns = (name: string) => effects.of('timer', name).filter((e) => (e.timer as { isPastDue: boolean }).isPastDue).length;

  beforeAll(async () => {
    vault = await startTestVault({ onListenerDropped: (url, reason) => dropped.push({ url, reason }) });
    clockUrl = `${vault.emulator.url}/management/vault/time`;
    host = await startHostProcess({
      env: {
        FIXTURE_EFFECTS_FILE: effects.path,
        KEYTURN_CLOCK_URL: clockUrl,
        KEYTURN_KEYVAULT_CA_FILE: vault.emulator.caFile,
        KEYTURN_CLOCK_CHECK_SECONDS: '1',
        TZ: 'UTC',
      },
    });
    listenerUrl = `${host.url}/admin/host/clock`;
  });
  afterAll(async () => {
    await host?.stop();
    await vault?.close();
    effects.remove();
  });

  it('follows a move while registered (the weekly timer runs once, past due)', async () => {
    expect(await listeners()).toEqual([listenerUrl]);
    const before = pastDueRuns('mondayTimer');
    await vault.emulator.clock.advance(8 * DAY_S);
    expect(pastDueRuns('mondayTimer')).toBe(before + 1);
  });

  it('registers again on its next check once dropped, and follows the next move', async () => {
    await drop(listenerUrl);
    expect(await listeners()).toEqual([]);
    await host.waitForLine(/no longer a clock listener .* registering again/, 10_000);
    await pollUntil(async () => ((await listeners()).includes(listenerUrl) ? true : undefined), 10_000);
    const before = pastDueRuns('mondayTimer');
    await vault.emulator.clock.advance(8 * DAY_S);
    expect(pastDueRuns('mondayTimer')).toBe(before + 1);
  });

  it('catches up with a move made while it was dropped', async () => {
    const before = pastDueRuns('mondayTimer');
    await drop(listenerUrl);
    await vault.emulator.clock.advance(8 * DAY_S); // nobody is told
    await pollUntil(() => (pastDueRuns('mondayTimer') === before + 1 ? true : undefined), 10_000);
    await host.waitForLine(/Clock moved to .* this host was not told about/, 1000);
    await pollUntil(async () => ((await listeners()).includes(listenerUrl) ? true : undefined), 10_000);
    const status = (await (await fetch(`${host.url}/admin/host/status`)).json()) as { clock: { now: string } };
    expect(Math.abs(Date.parse(status.clock.now) - vault.emulator.clock.now().getTime())).toBeLessThan(5000);
    // Caught up once: a further check runs nothing more.
    await new Promise((r) => setTimeout(r, 1000));
    expect(pastDueRuns('mondayTimer')).toBe(before + 1);
  });

  it('the emulator drops a listener that failed three moves in a row, and the stack logs it as one WARN line naming the host', async () => {
    const gone = 'http://127.0.0.1:9/admin/host/clock'; // nothing listens on the discard port
    const res = await requestJson(`${clockUrl}/listeners`, { method: 'POST', body: { url: gone }, ca: vault.emulator.ca });
    expect(res.status).toBe(200);
    for (let i = 0; i < 3; i++) await vault.emulator.clock.advance(1);
    expect(dropped.map((d) => d.url)).toEqual([gone]);
    expect(await listeners()).toEqual([listenerUrl]);
    const line = listenerDroppedLine(dropped[0]!.url, dropped[0]!.reason);
    expect(line).toMatch(/^WARN clock: dropped the functions host at http:\/\/127\.0\.0\.1:9 as a clock listener \(.*3 failed moves in a row\)/);
    expect(line.split('\n')).toHaveLength(1);
  });
});
