import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHostProcess, type HostProcess } from '../../helpers/host';
import { EffectsFile } from './fixtureEffects';

const DAY = 86_400_000;

/** Stands in for the Key Vault emulator's clock endpoints (plain http is fine for the fake). */
class FakeClockServer {
  offsetMs = 0;
  readonly listeners: string[] = [];
  readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/management/vault/time') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ time: new Date(Date.now() + this.offsetMs).toISOString(), offsetSeconds: this.offsetMs / 1000 }));
      } else if (req.method === 'POST' && req.url === '/management/vault/time/listeners') {
        this.listeners.push((JSON.parse(Buffer.concat(chunks).toString()) as { url: string }).url);
        res.writeHead(201).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/management/vault/time`;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('local host: movable clock', () => {
  const fake = new FakeClockServer();
  const effects = new EffectsFile();
  let host: HostProcess;

  beforeAll(async () => {
    fake.offsetMs = 100 * DAY;
    const clockUrl = await fake.start();
    host = await startHostProcess({
      env: { FIXTURE_EFFECTS_FILE: effects.path, KEYTURN_CLOCK_URL: clockUrl, TZ: 'UTC' },
    });
  });
  afterAll(async () => {
    await host?.stop();
    await fake.close();
    effects.remove();
  });

  const hostNow = async (): Promise<number> => {
    const status = (await (await fetch(`${host.url}/admin/host/status`)).json()) as { clock: { now: string } };
    return Date.parse(status.clock.now);
  };

  const jump = async (time: number): Promise<string[]> => {
    const res = await fetch(fake.listeners[0] as string, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ time: new Date(time).toISOString() }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { ran: string[] }).ran;
  };

  const pastDueRuns = (name: string) => effects.of('timer', name).filter((e) => (e.timer as { isPastDue: boolean }).isPastDue);

  it('registers itself as a clock listener once it listens', () => {
    expect(fake.listeners).toEqual([`${host.url}/admin/host/clock`]);
  });

  it('follows the emulator clock offset read at start', async () => {
    const now = await hostNow();
    // Far from the machine clock, close to the emulator's (the offset is 100 days).
    expect(Math.abs(now - (Date.now() + fake.offsetMs))).toBeLessThan(DAY);
  });

  it('runs each timer passed by a jump once, waits for the runs, and reschedules', async () => {
    // Two years and more ahead: the yearly, weekly timers all passed many occurrences.
    const target = Date.UTC(new Date(await hostNow()).getUTCFullYear() + 3, 2, 10, 6, 0, 0);
    const ran = await jump(target);
    expect([...ran].sort()).toEqual(['mondayTimer', 'settingTimer', 'startupTimer']);
    // The answer came after the runs finished.
    for (const name of ran) {
      expect(pastDueRuns(name)).toHaveLength(1);
      expect(effects.of('timer-done', name).length).toBeGreaterThan(0);
    }
    expect(effects.of('timer', 'badTimer')).toHaveLength(0);
    expect(effects.of('timer', 'disabledTimer')).toHaveLength(0);
    expect(Math.abs((await hostNow()) - target)).toBeLessThan(DAY);

    // Rescheduled from the new time: one more second passes no occurrence.
    expect(await jump(target + 1000)).toEqual([]);
    // Going back runs nothing either.
    expect(await jump(target - 30 * DAY)).toEqual([]);
    expect(pastDueRuns('settingTimer')).toHaveLength(1);
  });

  it('rejects a clock notification without a valid time', async () => {
    const res = await fetch(`${host.url}/admin/host/clock`, { method: 'POST', body: '{"time":"not a date"}' });
    expect(res.status).toBe(400);
  });
});

describe('local host: clock emulator unavailable', () => {
  it('warns and keeps running on the system clock', async () => {
    const fake = new FakeClockServer();
    const url = await fake.start();
    await fake.close(); // nothing listens there any more
    const host = await startHostProcess({ env: { KEYTURN_CLOCK_URL: url, LOCALHOST_DISABLE_TIMERS: 'true' } });
    try {
      await host.waitForLine(/Warning: Could not register .* as a clock listener/);
      expect((await fetch(`${host.url}/admin/host/status`)).status).toBe(200);
    } finally {
      await host.stop();
    }
  });
});

describe('local host: clock over https (as the Key Vault emulator serves it)', () => {
  it('trusts the CA named by KEYTURN_KEYVAULT_CA_FILE', async () => {
    // Imported lazily: generating the CA is only needed here.
    const { ensureLocalTls } = await import('../../../local/tls');
    const https = await import('node:https');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'keyturn-host-tls-'));
    const tls = await ensureLocalTls(dir);
    const listeners: string[] = [];
    const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ time: new Date().toISOString(), offsetSeconds: 0 }));
        } else {
          listeners.push((JSON.parse(Buffer.concat(chunks).toString()) as { url: string }).url);
          res.writeHead(204).end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const host = await startHostProcess({
      env: {
        LOCALHOST_DISABLE_TIMERS: 'true',
        KEYTURN_CLOCK_URL: `https://127.0.0.1:${port}/management/vault/time`,
        KEYTURN_KEYVAULT_CA_FILE: tls.caFile,
      },
    });
    try {
      expect(listeners).toEqual([`${host.url}/admin/host/clock`]);
      expect(host.output()).not.toContain('Could not');
    } finally {
      await host.stop();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
