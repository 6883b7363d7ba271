// Tenants added at run time on an Orthanc whose index is PostgreSQL (src/tenant-store.ts):
// the plugin keeps them in its own table, multitenant_dicom_tenants, created at start-up in
// Orthanc's database (a throwaway PostgreSQL 17 server, test/support/postgresql.ts). Tenants
// that an older version kept in the node's global property (20260, PostgreSQL's
// serverproperties under the node's DatabaseServerIdentifier) are copied into the table
// once, at the first start that finds the table without them; a tenant deleted afterwards
// does not come back from the old property. The store itself, as two nodes use it:
// concurrent changes are all kept, and a server that cannot be reached or refuses the
// password is named in one line. The cluster itself: cluster.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClusterNode, type ClusterNode, type ClusterOptions } from '../support/cluster.js';
import { echoOutcome, echoscu } from '../support/dcmtk.js';
import { freePort, stopAllOrthancs } from '../support/orthanc.js';
import { literal, logLines } from '../support/plugin.js';
import { GlobalPropertyStore, postgresIndexSettings, PostgresTableStore, TenantStoreError } from '../../src/tenant-store.js';
import { startPostgres, stopAllPostgres, type PostgresDatabase, type RunningPostgres } from '../support/postgresql.js';
import { waitForPort } from '../support/wait.js';

const ROUTE = '/plugins/multitenant-dicom/tenants';
const OLD = 'OLD_T';
const COPIED = literal("copied the 1 tenant(s) added through REST from Orthanc's global property 20260 (this node's own) into the table multitenant_dicom_tenants");

let postgres: RunningPostgres;
let options: ClusterOptions;
let node: ClusterNode;
let oldPort: number;

const sql = (statement: string) => postgres.sql(postgres.database.database, statement);
const tableRows = async () => (await sql('SELECT name, value FROM multitenant_dicom_tenants ORDER BY 1')).trim();
/** A new start of the same node (DatabaseServerIdentifier "node1"). */
async function restart(): Promise<void> {
  await node.orthanc.stop();
  node = await startClusterNode(options, 1);
}

beforeAll(async () => {
  postgres = await startPostgres();
  options = {
    database: postgres.database,
    tenants: [{ AET: 'CONFIGURED', Labels: ['configured'] }],
    configuration: { DicomModalities: { scu: { AET: 'PG_SCU', Host: '127.0.0.1', Port: 104 } } },
  };
  node = await startClusterNode(options, 1);
}, 300_000);

afterAll(async () => {
  await stopAllOrthancs();
  await stopAllPostgres();
}, 180_000);

describe('the tenants added through REST, on PostgreSQL', () => {
  it('live in the table multitenant_dicom_tenants, created at start-up, without a row until a change', async () => {
    expect(await tableRows()).toBe('');
    expect(node.orthanc.log()).toMatch(/created the table multitenant_dicom_tenants of PostgreSQL at 127\.0\.0\.1:\d+ database orthanc/);
  });

  it("those an older version kept in the node's global property are copied into the table once, and served", async () => {
    oldPort = await freePort();
    const kept = JSON.stringify({ Servers: [{ AET: OLD, Port: oldPort, Labels: ['old'] }] });
    await node.orthanc.stop();
    await sql(`INSERT INTO serverproperties (server, property, value) VALUES ('node1', 20260, '${kept}')`);
    node = await startClusterNode(options, 1);
    await node.orthanc.waitForLog(COPIED, 30_000);
    expect(await tableRows()).toBe(`tenants|${kept}`);
    await waitForPort(oldPort, true, { timeoutMs: 30_000 });
    expect(echoOutcome(await echoscu({ host: '127.0.0.1', port: oldPort, calledAet: OLD, callingAet: 'PG_SCU' }))).toBe('accepted');
  }, 300_000);

  it('a tenant deleted after the copy stays deleted across a restart (the old property is not read again)', async () => {
    const deleted = await node.orthanc.rest('DELETE', `${ROUTE}/${OLD}`);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(await tableRows()).toBe(`tenants|${JSON.stringify({ Servers: [] })}`);
    await restart();
    expect(node.orthanc.log()).not.toMatch(COPIED);
    expect((await node.orthanc.rest('GET', `${ROUTE}/${OLD}`)).status).toBe(404);
    expect(await tableRows()).toBe(`tenants|${JSON.stringify({ Servers: [] })}`);
  }, 300_000);

  it('a tenant added through REST survives a restart, and no row of serverproperties holds it', async () => {
    const port = await freePort();
    const created = await node.orthanc.rest('PUT', `${ROUTE}/NEW_T`, { Port: port, Labels: ['new'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await restart();
    await waitForPort(port, true, { timeoutMs: 30_000 });
    expect((await sql(`SELECT server FROM serverproperties WHERE value LIKE '%NEW_T%'`)).trim()).toBe('');
    expect(logLines(node.orthanc.log()).filter((line) => line.level === 'E')).toEqual([]);
  }, 300_000);
});

describe('the table store, as two nodes use it', () => {
  const silent = { info: () => {}, warning: () => {} };
  const noProperty = new GlobalPropertyStore({ getGlobalProperty: async () => '', setGlobalProperty: async () => {} });
  // A database of their own: Orthanc's node keeps reading its own table meanwhile.
  let own: PostgresDatabase;
  beforeAll(async () => {
    own = await postgres.createDatabase('stores');
  });
  const storeWith = (section: Record<string, unknown>) => {
    const { host, port, database, username, password } = own;
    const settings = postgresIndexSettings({
      PostgreSQL: { EnableIndex: true, Host: host, Port: port, Database: database, Username: username, Password: password, ...section },
    })!;
    return new PostgresTableStore(settings, noProperty, silent);
  };

  it('keeps every one of 40 changes made at once through two stores (each appends its own item)', async () => {
    const stores = [storeWith({}), storeWith({})];
    try {
      await stores[0]!.update(() => '[]');
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => stores[i % 2]!.update((text) => JSON.stringify([...(JSON.parse(text) as number[]), i]))),
      );
      const items = JSON.parse(await stores[1]!.read()) as number[];
      expect(items.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('a server that cannot be reached, or a wrong password: one line naming the server, the database and the reason', async () => {
    const closedPort = await freePort();
    const unreachable = storeWith({ Port: closedPort });
    const wrongPassword = storeWith({ Password: 'not-the-password' });
    try {
      const refused = await unreachable.read().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(TenantStoreError);
      expect((refused as Error).message).toBe(
        `cannot reach PostgreSQL at 127.0.0.1:${closedPort} database stores (Orthanc's "PostgreSQL" section) for the tenants added through REST: ` +
          `connect ECONNREFUSED 127.0.0.1:${closedPort}`,
      );
      const denied = await wrongPassword.update((text) => text).catch((error: unknown) => error);
      expect((denied as Error).message).toBe(
        `cannot reach PostgreSQL at 127.0.0.1:${postgres.port} database stores (Orthanc's "PostgreSQL" section) for the tenants added through REST: ` +
          'password authentication failed for user "stores"',
      );
    } finally {
      await Promise.all([unreachable.close(), wrongPassword.close()]);
    }
  });
});
