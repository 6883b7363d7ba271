// The plugin as Orthanc sees it: registration, tenant servers answering C-ECHO, the
// warnings of an empty or unusual configuration, and a tenant whose port is taken.
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { echoOutcome, echoscu } from '../support/dcmtk.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import {
  listeningLine,
  literal,
  logMessages,
  multitenantSection,
  PACKAGE_VERSION,
  PLUGIN_ID,
  PLUGIN_PATH,
  tenantName,
  tenantServer,
} from '../support/plugin.js';

const occupiers: Server[] = [];

afterAll(async () => {
  await stopAllOrthancs();
  await Promise.all(occupiers.map((server) => new Promise((resolve) => server.close(resolve))));
});

function startWithPlugin(configuration: Record<string, unknown>, waitForPorts: number[] = []) {
  return startOrthanc({ configuration, plugins: [PLUGIN_PATH], waitForPorts });
}

async function echo(port: number, calledAet: string, callingAet = 'PLUGIN_TEST') {
  return echoOutcome(await echoscu({ port, calledAet, callingAet }));
}

const NO_SECTION_WARNING =
  'MultitenantDicom: the configuration has no "MultitenantDicom" section, no multitenant DICOM server is started';
const EMPTY_SERVERS_WARNING = 'MultitenantDicom: "Servers" is empty, no multitenant DICOM server is started';

/** The plugin is loaded, started no server, and Orthanc itself answers. */
async function expectLoadedWithoutServers(orthanc: RunningOrthanc) {
  expect((await orthanc.rest<string[]>('GET', '/plugins')).body).toContain(PLUGIN_ID);
  expect(orthanc.log()).not.toMatch(/multitenant DICOM server listening/);
  expect(orthanc.log()).not.toMatch(/cannot listen on port/);
  expect(await echo(orthanc.dicomPort, 'ORTHANC')).toBe('accepted');
}

describe('the plugin in Orthanc', () => {
  it('is registered as "multitenant-dicom" with the package version and a TypeScript description', async () => {
    const orthanc = await startWithPlugin({});

    const plugins = await orthanc.rest<string[]>('GET', '/plugins');
    expect(plugins).toMatchObject({ status: 200 });
    expect(plugins.body).toContain(PLUGIN_ID);

    const plugin = await orthanc.rest<{ ID: string; Version: string; Description: string }>(
      'GET',
      `/plugins/${PLUGIN_ID}`,
    );
    expect(plugin.status).toBe(200);
    expect(plugin.body.ID).toBe(PLUGIN_ID);
    expect(plugin.body.Version).toBe(PACKAGE_VERSION);
    expect(plugin.body.Description).toMatch(/TypeScript/);
    expect(orthanc.log()).toContain(`Registering plugin '${PLUGIN_ID}' (version ${PACKAGE_VERSION})`);
  });

  it('serves C-ECHO on each tenant, with its own AET and port, and logs both servers', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const orthanc = await startWithPlugin(
      multitenantSection(tenantServer('TENANT_A', portA), tenantServer('TENANT_B', portB)),
      [portA, portB],
    );

    // The port accepts a moment before the line reaches the log.
    await orthanc.waitForLog(literal(listeningLine(1, 'TENANT_B', portB)), 30_000);
    const messages = logMessages(orthanc.log(), 'W');
    expect(messages).toContain(listeningLine(0, 'TENANT_A', portA));
    expect(messages).toContain(listeningLine(1, 'TENANT_B', portB));

    expect(await echo(portA, 'TENANT_A')).toBe('accepted');
    expect(await echo(portB, 'TENANT_B')).toBe('accepted');
    expect(await echo(orthanc.dicomPort, 'ORTHANC')).toBe('accepted');
  });

  it('names its JavaScript thread and its tenants\' DICOM threads, as `top -H` and the bench see them', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const orthanc = await startWithPlugin(
      multitenantSection(tenantServer('TENANT_A', portA), tenantServer('TENANT_B', portB)),
      [portA, portB],
    );
    expect(await echo(portA, 'TENANT_A')).toBe('accepted');

    const names = await Promise.all(
      (await readdir(`/proc/${orthanc.pid}/task`)).map((task) => readFile(`/proc/${orthanc.pid}/task/${task}/comm`, 'utf8').then((name) => name.trim(), () => '')),
    );
    expect(names).toContain('mtd-javascript');
    // Each tenant's server has its listener and workers (DicomThreadsCount, 4 by default).
    expect(names.filter((name) => name === 'mtd-dicom').length).toBeGreaterThanOrEqual(2 * 2);
    // The libuv pool keeps its own name (the thread that started the servers got it back).
    expect(names).toContain('libuv-worker');
  });

  it('starts nothing, with a warning, when the configuration has no "MultitenantDicom" section', async () => {
    const orthanc = await startWithPlugin({});
    expect(logMessages(orthanc.log(), 'W')).toContain(NO_SECTION_WARNING);
    await expectLoadedWithoutServers(orthanc);
  });

  it('starts nothing, with a warning, when "Servers" is empty', async () => {
    const orthanc = await startWithPlugin({ MultitenantDicom: { Servers: [] } });
    expect(logMessages(orthanc.log(), 'W')).toContain(EMPTY_SERVERS_WARNING);
    expect(orthanc.log()).not.toContain(NO_SECTION_WARNING);
    await expectLoadedWithoutServers(orthanc);
  });

  it('warns about an unknown key and still serves the tenant', async () => {
    const port = await freePort();
    const orthanc = await startWithPlugin(
      multitenantSection(tenantServer('A', port, { Lables: ['typo'] })),
      [port],
    );
    expect(logMessages(orthanc.log(), 'W')).toContain(
      'MultitenantDicom.Servers[0] (AET "A"): unknown key "Lables" is ignored',
    );
    expect(await echo(port, 'A')).toBe('accepted');
  });

  it('reports a tenant whose port is taken, naming AET and port, and serves the other tenants', async () => {
    // Another process holds the port of the first tenant, on every interface.
    const occupier = createServer().listen(0, '0.0.0.0');
    occupiers.push(occupier);
    await once(occupier, 'listening');
    const busyPort = (occupier.address() as { port: number }).port;
    const freeTenantPort = await freePort();

    const orthanc = await startWithPlugin(
      multitenantSection(tenantServer('BUSY', busyPort), tenantServer('FREE', freeTenantPort)),
      [freeTenantPort],
    );
    // The servers open in configuration order; the port accepts a moment before the line reaches the log.
    await orthanc.waitForLog(literal(listeningLine(1, 'FREE', freeTenantPort)), 30_000);

    const errors = logMessages(orthanc.log(), 'E');
    const busyError = errors.filter((message) => message.startsWith(`${tenantName(0, 'BUSY')}: cannot listen on port ${busyPort} (`));
    expect(busyError, errors.join('\n')).toHaveLength(1);
    expect(busyError[0]).toMatch(/\); this tenant is not served, the other tenants are$/);
    expect(orthanc.log()).not.toContain(listeningLine(0, 'BUSY', busyPort));

    expect(logMessages(orthanc.log(), 'W')).toContain(listeningLine(1, 'FREE', freeTenantPort));
    expect(await echo(freeTenantPort, 'FREE')).toBe('accepted');
    expect(await echo(orthanc.dicomPort, 'ORTHANC')).toBe('accepted');
    expect((await orthanc.rest('GET', '/system')).status).toBe(200);
  });
});
