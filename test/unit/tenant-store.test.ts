// Where the tenants added through REST live (src/tenant-store.ts): the store chosen from
// Orthanc's configuration, the PostgreSQL connection settings read as Orthanc's PostgreSQL
// plugin reads them, the messages that say what to fix, and the global property store.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  connectionProblem,
  GlobalPropertyStore,
  openTenantStore,
  parseKeywordValues,
  postgresIndexSettings,
  PostgresTableStore,
  reasonOf,
  statementProblem,
  TENANTS_PROPERTY,
} from '../../src/tenant-store.js';

const silent = { info: () => {}, warning: () => {} };

/** A bridge whose global properties live in a map. */
function properties(initial: Record<number, string> = {}) {
  const values = new Map(Object.entries(initial).map(([key, value]) => [Number(key), value]));
  const writes: string[] = [];
  return {
    values,
    writes,
    getGlobalProperty: async (property: number) => values.get(property) ?? '',
    setGlobalProperty: async (property: number, value: string) => {
      writes.push(value);
      values.set(property, value);
    },
  };
}

const settings = (section: Record<string, unknown>) => postgresIndexSettings({ PostgreSQL: section }, 'orthanc-os-user');

describe('the store', () => {
  it("is Orthanc's global property without a PostgreSQL index (SQLite, one Orthanc)", () => {
    for (const configuration of [
      {},
      { PostgreSQL: { EnableStorage: true, Host: 'db' } },
      { PostgreSQL: { EnableIndex: false, Host: 'db' } },
      { PostgreSQL: { EnableIndex: 'true', Host: 'db' } },
    ]) {
      const store = openTenantStore(configuration, properties(), silent);
      expect(store, JSON.stringify(configuration)).toBeInstanceOf(GlobalPropertyStore);
      expect(store.where).toBe("Orthanc's global property 20260");
    }
  });

  it("is the plugin's table in Orthanc's PostgreSQL database when the index is PostgreSQL", () => {
    const store = openTenantStore({ PostgreSQL: { EnableIndex: true, Host: 'db.example', Database: 'orthanc' } }, properties(), silent);
    expect(store).toBeInstanceOf(PostgresTableStore);
    expect(store.where).toBe('the table multitenant_dicom_tenants of PostgreSQL at db.example:5432 database orthanc');
  });
});

describe('the connection settings of PostgreSQL', () => {
  it('are the section\'s Host, Port, Database, Username and Password', () => {
    expect(settings({ EnableIndex: true, Host: '192.0.2.10', Port: 5433, Database: 'pacs', Username: 'orthanc', Password: 's3cret' })).toEqual({
      client: { host: '192.0.2.10', port: 5433, database: 'pacs', user: 'orthanc', password: 's3cret', ssl: false },
      where: '192.0.2.10:5433 database pacs',
      user: 'orthanc',
    });
  });

  it("default as the plugin's do: localhost, 5432, the process' user, a database of the user's name, no SSL", () => {
    expect(settings({ EnableIndex: true })).toEqual({
      client: { host: 'localhost', port: 5432, database: 'orthanc-os-user', user: 'orthanc-os-user', password: undefined, ssl: false },
      where: 'localhost:5432 database orthanc-os-user',
      user: 'orthanc-os-user',
    });
    expect(settings({ EnableIndex: true, Username: 'orthanc' })?.client).toMatchObject({ user: 'orthanc', database: 'orthanc' });
  });

  it("EnableSsl: encrypted, the server's certificate not checked (the plugin's sslmode=require)", () => {
    expect(settings({ EnableIndex: true, EnableSsl: true })?.client.ssl).toEqual({ rejectUnauthorized: false });
  });

  it('a unix socket folder as Host, and an IPv6 address, are named as such', () => {
    expect(settings({ EnableIndex: true, Host: '/var/run/postgresql', Database: 'orthanc' })?.where).toBe('/var/run/postgresql:5432 database orthanc');
    expect(settings({ EnableIndex: true, Host: '::1', Database: 'orthanc' })?.where).toBe('[::1]:5432 database orthanc');
  });

  it('ConnectionUri wins over the other keys, and its sslmode means what it means to libpq', () => {
    const uri = 'postgresql://orthanc:pw@db.example:6432/pacs?sslmode=require';
    expect(settings({ EnableIndex: true, ConnectionUri: uri, Host: 'ignored', Port: 1 })).toEqual({
      client: { connectionString: `${uri}&uselibpqcompat=true` },
      where: 'db.example:6432 database pacs',
      user: 'orthanc',
    });
    expect(settings({ EnableIndex: true, ConnectionUri: 'postgres://db.example/pacs' })).toMatchObject({
      client: { connectionString: 'postgres://db.example/pacs?uselibpqcompat=true' },
      where: 'db.example:5432 database pacs',
    });
    const compat = 'postgresql://u@h/d?uselibpqcompat=false';
    expect(settings({ EnableIndex: true, ConnectionUri: compat })?.client).toEqual({ connectionString: compat });
  });

  it("ConnectionUri in libpq's keyword=value form", () => {
    expect(settings({ EnableIndex: true, ConnectionUri: "host=db.example port=6432 dbname=pacs user=orthanc password='p w\\'d' sslmode=require" })).toEqual({
      client: { host: 'db.example', port: 6432, database: 'pacs', user: 'orthanc', password: "p w'd", ssl: { rejectUnauthorized: false } },
      where: 'db.example:6432 database pacs',
      user: 'orthanc',
    });
    expect(settings({ EnableIndex: true, ConnectionUri: 'host=db sslmode=disable' })?.client).toMatchObject({ host: 'db', ssl: false, database: 'orthanc-os-user' });
    expect(settings({ EnableIndex: true, ConnectionUri: 'host=db sslmode=verify-full' })?.client).toMatchObject({ ssl: true });
  });

  it('keyword=value parsing: spaces around "=", quoted and escaped values; anything else is not that form', () => {
    expect(parseKeywordValues("host = db  dbname='my db' password=a\\ b")).toEqual({ host: 'db', dbname: 'my db', password: 'a b' });
    expect(parseKeywordValues('user=')).toEqual({ user: '' });
    expect(parseKeywordValues('postgresql://u@h/d')).toBeUndefined();
    expect(parseKeywordValues('host=db garbage')).toBeUndefined();
    expect(parseKeywordValues('')).toBeUndefined();
  });
});

describe('the messages', () => {
  const at = settings({ EnableIndex: true, Host: 'db.example', Port: 5432, Database: 'orthanc', Username: 'orthanc' })!;

  it('a connection that fails: one line naming the server, the database, the section and the reason', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 192.0.2.10:5432'), { code: 'ECONNREFUSED' });
    expect(connectionProblem(at, refused)).toBe(
      'cannot reach PostgreSQL at db.example:5432 database orthanc (Orthanc\'s "PostgreSQL" section) for the tenants added through REST: ' +
        'connect ECONNREFUSED 192.0.2.10:5432',
    );
  });

  it("an AggregateError (every address of a host refused) is told by its errors; an error without words by its code", () => {
    const errors = [new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')];
    expect(reasonOf(new AggregateError(errors, ''))).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(reasonOf(Object.assign(new Error(''), { code: 'ETIMEDOUT' }))).toBe('ETIMEDOUT');
    expect(reasonOf('plain')).toBe('plain');
  });

  it('a missing right to create the table gives the SQL that creates it beforehand', () => {
    const denied = Object.assign(new pg.DatabaseError('permission denied for schema public', 0, 'error'), { code: '42501' });
    const message = statementProblem(at, denied);
    expect(message).toBe(
      'cannot create or use the table multitenant_dicom_tenants of the tenants added through REST in PostgreSQL at db.example:5432 database orthanc: ' +
        'permission denied for schema public; grant the user orthanc CREATE on the schema, or create the table beforehand: ' +
        'CREATE TABLE multitenant_dicom_tenants (name TEXT PRIMARY KEY, value TEXT NOT NULL); ' +
        'GRANT SELECT, INSERT, UPDATE ON multitenant_dicom_tenants TO orthanc',
    );
    expect(message).not.toContain('\n');
  });

  it('another refused statement names the table and the server', () => {
    const other = Object.assign(new pg.DatabaseError('canceling statement due to statement timeout', 0, 'error'), { code: '57014' });
    expect(statementProblem(at, other)).toBe(
      'the tenants added through REST, in the table multitenant_dicom_tenants of PostgreSQL at db.example:5432 database orthanc: ' +
        'canceling statement due to statement timeout',
    );
  });
});

describe("the global property store (one Orthanc)", () => {
  it('reads "" when nothing was stored, and writes what the change returns', async () => {
    const bridge = properties();
    const store = new GlobalPropertyStore(bridge);
    expect(await store.read()).toBe('');
    expect(await store.update((text) => `${text}{"Servers":[]}`)).toBe('{"Servers":[]}');
    expect(bridge.values.get(TENANTS_PROPERTY)).toBe('{"Servers":[]}');
  });

  it('does not write when the change keeps the text', async () => {
    const bridge = properties({ [TENANTS_PROPERTY]: '{"Servers":[]}' });
    const store = new GlobalPropertyStore(bridge);
    expect(await store.update((text) => text)).toBe('{"Servers":[]}');
    expect(bridge.writes).toEqual([]);
  });
});
