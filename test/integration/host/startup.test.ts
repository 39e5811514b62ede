import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHostUntilExit, startHostProcess } from '../../helpers/host';

describe('local host: start-up', () => {
  it('prints the listening URL and one line per function', async () => {
    const host = await startHostProcess({ env: { LOCALHOST_DISABLE_TIMERS: 'true' } });
    try {
      expect(host.port).toBeGreaterThan(0);
      await host.waitForLine(`itemById: [GET] ${host.url}/api/items/{id:int}`);
      await host.waitForLine('settingTimer: timerTrigger (%FIXTURE_SCHEDULE%)');
      await host.waitForLine(`onEvent: eventGridTrigger ${host.url}/runtime/webhooks/EventGrid?functionName=onEvent`);
    } finally {
      await host.stop();
    }
  });

  it('exits 1 with the message when the app throws while loading', async () => {
    const { code, output } = await runHostUntilExit({ env: { FIXTURE_FAIL_LOAD: '1' } });
    expect(code).toBe(1);
    expect(output).toContain('Invalid configuration: FIXTURE_REQUIRED_SETTING is missing');
    expect(output).not.toMatch(/^\s+at /m);
    expect(output).not.toContain('Host listening on');
  });

  it('exits 1 naming the port and the PORT setting when the port is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const { code, output } = await runHostUntilExit({ env: { PORT: String(port), LOCALHOST_DISABLE_TIMERS: 'true' } });
      expect(code).toBe(1);
      expect(output).toContain(`Port ${port}`);
      expect(output).toContain('PORT');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('fails fast on app.setup({ enableHttpStream: true })', async () => {
    const { code, output } = await runHostUntilExit({ env: { FIXTURE_HTTP_STREAM: '1' } });
    expect(code).toBe(1);
    expect(output).toContain('enableHttpStream');
  });

  it('exits 1 when package.json main matches no file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyturn-host-empty-'));
    try {
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ main: 'dist/functions/*.js' }));
      const { code, output } = await runHostUntilExit({ appDir: dir });
      expect(code).toBe(1);
      expect(output).toContain('dist/functions/*.js');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
