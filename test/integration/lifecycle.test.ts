// The plugin's life in Orthanc's process: clean exits on signals, restart with
// POST /tools/reset, and Orthanc surviving failures of the embedded JavaScript.
import { constants, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { echoOutcome, echoscu } from '../support/dcmtk.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { listeningLine, literal, logMessages, multitenantSection, PLUGIN_PATH, tenantName, tenantServer } from '../support/plugin.js';

afterAll(stopAllOrthancs);

const TENANTS = ['TENANT_A', 'TENANT_B'] as const;
const { O_NONBLOCK } = constants;

/** Orthanc with the plugin and two tenants, once both tenants accept connections. */
async function startTwoTenants(env: Record<string, string> = {}) {
  const ports = [await freePort(), await freePort()];
  const orthanc = await startOrthanc({
    configuration: multitenantSection(...TENANTS.map((aet, i) => tenantServer(aet, ports[i]!))),
    plugins: [PLUGIN_PATH],
    env,
    waitForPorts: ports,
  });
  const echoTenant = async (i: number) =>
    echoOutcome(await echoscu({ port: ports[i]!, calledAet: TENANTS[i]!, callingAet: 'LIFECYCLE' }));
  const echoMain = async () =>
    echoOutcome(await echoscu({ port: orthanc.dicomPort, calledAet: 'ORTHANC', callingAet: 'LIFECYCLE' }));
  return { orthanc, ports, echoTenant, echoMain };
}

/** Signals Orthanc and checks that it ends cleanly within 5 s of the signal. */
async function expectCleanStop(orthanc: RunningOrthanc, signal: NodeJS.Signals, what: string) {
  const exit = await orthanc.stop(signal);
  expect(exit, `${what}: exit\n${orthanc.log()}`).toMatchObject({ code: 0, signal: null });
  expect(exit.durationMs, `${what}: time from the ${signal} to the exit (ms)`).toBeLessThan(5_000);
  expect(orthanc.log()).toMatch(/Orthanc has stopped/);
  expect(logMessages(orthanc.log(), 'E'), `${what}: error lines`).toEqual([]);
}

// Every test has its own Orthanc: run them side by side (stopping Orthanc takes ~3 s).
describe.concurrent('the plugin in Orthanc\'s process', () => {
  describe('signals', () => {
    it.each(['SIGTERM', 'SIGINT'] as const)('%s ends Orthanc with exit code 0 within 5 s', async (signal) => {
      const { orthanc, echoTenant } = await startTwoTenants();
      // The tenants are serving (and the JS runtime has handled requests) when the signal comes.
      expect([await echoTenant(0), await echoTenant(1)]).toEqual(['accepted', 'accepted']);
      await expectCleanStop(orthanc, signal, `two tenants, ${signal}`);
    });

    // Each tenant's DicomServer::Stop() waits up to a second for its accept loop: stopping
    // the tenants one after the other would add about a second per tenant.
    it('SIGTERM ends Orthanc within 5 s with six tenants too', async () => {
      const ports: number[] = [];
      for (let i = 0; i < 6; i++) ports.push(await freePort());
      const orthanc = await startOrthanc({
        configuration: multitenantSection(...ports.map((port, i) => tenantServer(`TENANT_${i}`, port))),
        plugins: [PLUGIN_PATH],
        waitForPorts: ports,
      });
      await expectCleanStop(orthanc, 'SIGTERM', 'six tenants');
    });
  });

  describe('POST /tools/reset', () => {
    it('restarts the plugin: the tenants answer C-ECHO again', async () => {
      const { orthanc, ports, echoTenant, echoMain } = await startTwoTenants();
      expect([await echoTenant(0), await echoTenant(1)]).toEqual(['accepted', 'accepted']);

      const before = orthanc.log().length;
      const reset = await orthanc.rest('POST', '/tools/reset', '');
      expect(reset.status).toBe(200);

      // Orthanc restarts in place (plugins finalised and loaded again): wait until both
      // tenants log that they listen again, then until Orthanc answers.
      for (const [i, aet] of TENANTS.entries()) {
        await orthanc.waitForLog(literal(listeningLine(i, aet, ports[i]!)), 30_000, before);
      }
      await orthanc.waitForLog(/Orthanc has started/, 30_000, before);
      expect((await orthanc.rest('GET', '/system')).status).toBe(200);

      expect([await echoTenant(0), await echoTenant(1)]).toEqual(['accepted', 'accepted']);
      expect(await echoMain()).toBe('accepted');
      expect(logMessages(orthanc.log().slice(before), 'E'), 'error lines since the reset').toEqual([]);

      const exit = await orthanc.stop();
      expect(exit, `exit after the reset\n${orthanc.log()}`).toMatchObject({ code: 0, signal: null });
    });
  });

  describe('failures in JavaScript (MTD_FAULT_INJECTION)', () => {
    it('a throwing "allowRequest" refuses the C-ECHO of the tenant, and Orthanc keeps serving', async () => {
      const { orthanc, echoTenant, echoMain } = await startTwoTenants({ MTD_FAULT_INJECTION: 'allowRequest' });

      expect(await echoTenant(0)).toBe('echo refused');
      // The C++ side reports the failure as one error line naming the tenant (and the caller).
      const failureLine = new RegExp(
        `^${literal(tenantName(0, 'TENANT_A')).source}: "allowRequest"( from LIFECYCLE)? failed in JS, ` +
          `the request is refused: Error: fault injected into "allowRequest" \\(MTD_FAULT_INJECTION\\)$`,
      );
      await expect
        .poll(() => logMessages(orthanc.log(), 'E').filter((message) => failureLine.test(message)).length)
        .toBe(1);

      expect((await orthanc.rest('GET', '/system')).status).toBe(200);
      expect(await echoMain()).toBe('accepted');
      expect(await echoTenant(1)).toBe('echo refused'); // every request of every tenant asks JS

      const exit = await orthanc.stop();
      expect(exit, `exit\n${orthanc.log()}`).toMatchObject({ code: 0, signal: null });
    });

    it('an uncaught exception in JS is logged, and Orthanc and the tenants keep serving', async () => {
      const { orthanc, echoTenant, echoMain } = await startTwoTenants({ MTD_FAULT_INJECTION: 'uncaughtException' });

      await orthanc.waitForLog(/multitenant-dicom: uncaught JavaScript error: Error: fault injected: uncaught exception/);
      expect([await echoTenant(0), await echoTenant(1)]).toEqual(['accepted', 'accepted']);
      expect(await echoMain()).toBe('accepted');
      expect((await orthanc.rest('GET', '/system')).status).toBe(200);

      const exit = await orthanc.stop();
      expect(exit, `exit\n${orthanc.log()}`).toMatchObject({ code: 0, signal: null });
    });

    it('what JS writes to stdout and stderr goes to Orthanc\'s log; Orthanc\'s own stdout and stderr stay blocking', async () => {
      const { orthanc, echoTenant } = await startTwoTenants({ MTD_FAULT_INJECTION: 'stdio' });

      await orthanc.waitForLog(/fault injected: a process warning/);
      const plugin = (level: string) => logMessages(orthanc.log(), level);
      // Orthanc marks the information lines of plugins "(plugins)".
      expect(plugin('I')).toContain('(plugins) fault injected: console.log (MTD_FAULT_INJECTION)');
      expect(plugin('W')).toContain('fault injected: console.error (MTD_FAULT_INJECTION)');
      expect(plugin('W').some((message) => message.includes('Warning: fault injected: a process warning'))).toBe(true);
      expect([await echoTenant(0), await echoTenant(1)]).toEqual(['accepted', 'accepted']);
      // Node opens a pipe it writes to as non-blocking, for the whole process: Orthanc's log
      // lines would be lost whenever the pipe is full.
      for (const fd of [1, 2]) {
        const flags = parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/${orthanc.pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
        expect(flags & O_NONBLOCK, `fd ${fd} of Orthanc is non-blocking`).toBe(0);
      }

      const exit = await orthanc.stop();
      expect(exit, `exit\n${orthanc.log()}`).toMatchObject({ code: 0, signal: null });
    });

    it('process.exit() in JS is logged and ignored, and Orthanc and the tenants keep serving', async () => {
      const { orthanc, echoTenant, echoMain } = await startTwoTenants({ MTD_FAULT_INJECTION: 'processExit' });

      await orthanc.waitForLog(/multitenant-dicom: JavaScript called process\.exit\(3\); ignored/);
      expect(logMessages(orthanc.log(), 'W')).toContain('fault injected: process.exit(3) (MTD_FAULT_INJECTION)');
      expect([await echoTenant(0), await echoTenant(1)]).toEqual(['accepted', 'accepted']);
      expect(await echoMain()).toBe('accepted');
      expect((await orthanc.rest('GET', '/system')).status).toBe(200);

      const exit = await orthanc.stop();
      expect(exit, `exit\n${orthanc.log()}`).toMatchObject({ code: 0, signal: null });
    });
  });
});
