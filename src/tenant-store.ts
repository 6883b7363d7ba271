// Where the tenants added through REST live (src/runtime-tenants.ts): one JSON text,
// shared by every Orthanc that uses the same database.
//
// Orthanc files a plugin's global property under the server's DatabaseServerIdentifier,
// and a cluster needs a distinct one per node: on PostgreSQL the nodes would not see each
// other's tenants. So on PostgreSQL they live in a table of the plugin's own in Orthanc's
// database, which every node reads; on SQLite (one Orthanc) in the global property.
import { userInfo } from 'node:os';
import type pg from 'pg';
import { isJsonObject } from './json.js';
import type { NativeBridge } from './native.js';
import { describeError, type Orthanc } from './orthanc.js';

/** The global property of the single-node store: {"Servers": [entries as PUT]} (plugins use numbers from 1024). */
export const TENANTS_PROPERTY = 20_260;
/** The table of the PostgreSQL store, and its one row. */
export const TENANTS_TABLE = 'multitenant_dicom_tenants';
export const CREATE_TABLE = `CREATE TABLE ${TENANTS_TABLE} (name TEXT PRIMARY KEY, value TEXT NOT NULL)`;
const ROW = 'tenants';

export interface TenantStore {
  /** Where the tenants live, for messages. */
  readonly where: string;
  /** The text ("" when nothing was ever stored). */
  read(): Promise<string>;
  /**
   * Replaces the text with change(text), with no other change in between, even through
   * another node; resolves with the new text.
   */
  update(change: (text: string) => string): Promise<string>;
}

/** The store can neither be read nor written; the message names what to fix. */
export class TenantStoreError extends Error {
  override name = 'TenantStoreError';
}

type GlobalProperties = Pick<NativeBridge, 'getGlobalProperty' | 'setGlobalProperty'>;

/** Who hears what the store did once: created its table, copied the tenants kept before, lost a connection. */
export type StoreLog = Pick<Orthanc, 'info' | 'warning'>;

/** The store of Orthanc's configuration: a PostgreSQL table when the index is PostgreSQL, else the global property. */
export function openTenantStore(configuration: Record<string, unknown>, native: GlobalProperties, log: StoreLog): TenantStore {
  const property = new GlobalPropertyStore(native);
  const settings = postgresIndexSettings(configuration);
  return settings === undefined ? property : new PostgresTableStore(settings, property, log);
}

/** Orthanc's global property: one Orthanc (RuntimeTenants runs its changes one after the other). */
export class GlobalPropertyStore implements TenantStore {
  readonly where = `Orthanc's global property ${TENANTS_PROPERTY}`;

  constructor(private readonly native: GlobalProperties) {}

  read(): Promise<string> {
    return this.native.getGlobalProperty(TENANTS_PROPERTY);
  }

  async update(change: (text: string) => string): Promise<string> {
    const current = await this.read();
    const text = change(current);
    if (text !== current) await this.native.setGlobalProperty(TENANTS_PROPERTY, text);
    return text;
  }
}

export interface PostgresSettings {
  /** What pg connects with. */
  client: pg.ClientConfig;
  /** "host:port database name", for messages. */
  where: string;
  user: string;
}

/**
 * The connection settings of Orthanc's PostgreSQL index, read as its plugin reads them
 * (ConnectionUri, else Host, Port, Database, Username, Password, EnableSsl); undefined
 * when the index is not PostgreSQL ("PostgreSQL": {"EnableIndex": true}).
 */
export function postgresIndexSettings(configuration: Record<string, unknown>, osUser = userInfo().username): PostgresSettings | undefined {
  const section = configuration['PostgreSQL'];
  if (!isJsonObject(section) || section['EnableIndex'] !== true) return undefined;
  const text = (key: string) => (typeof section[key] === 'string' ? section[key] : undefined);
  const uri = text('ConnectionUri');
  if (uri) return connectionUriSettings(uri, osUser);
  // libpq's defaults, as the plugin leaves them: the user of the process, a database of the user's name.
  const user = text('Username') || osUser;
  const port = section['Port'];
  const at = {
    host: text('Host') || 'localhost',
    port: typeof port === 'number' && Number.isInteger(port) ? port : 5432,
    database: text('Database') || user,
    user,
  };
  // The plugin's sslmode=require: encrypted, the server's certificate not checked.
  const ssl = section['EnableSsl'] === true ? { rejectUnauthorized: false } : false;
  return settingsAt({ ...at, password: text('Password') || undefined, ssl }, at);
}

/** A libpq connection string: a URI (postgresql://...) or keyword=value pairs. */
function connectionUriSettings(uri: string, osUser: string): PostgresSettings {
  const keywords = parseKeywordValues(uri);
  if (keywords !== undefined) {
    const user = keywords['user'] || osUser;
    const sslmode = keywords['sslmode'] ?? 'prefer';
    const at = { host: keywords['host'] || 'localhost', port: Number(keywords['port']) || 5432, database: keywords['dbname'] || user, user };
    const ssl = sslmode === 'require' ? { rejectUnauthorized: false } : sslmode.startsWith('verify');
    return settingsAt({ ...at, password: keywords['password'] || undefined, ssl }, at);
  }
  let at = { host: 'localhost', port: 5432, database: osUser, user: osUser };
  try {
    const url = new URL(uri);
    const user = decodeURIComponent(url.username) || osUser;
    const database = decodeURIComponent(url.pathname.slice(1)) || user;
    at = { host: decodeURIComponent(url.hostname) || 'localhost', port: Number(url.port) || 5432, database, user };
  } catch {
    // pg says what is wrong with it when it connects
  }
  // uselibpqcompat: sslmode means what it means to libpq (and so to Orthanc's plugin).
  const connectionString = /[?&]uselibpqcompat=/i.test(uri) ? uri : `${uri}${uri.includes('?') ? '&' : '?'}uselibpqcompat=true`;
  return settingsAt({ connectionString }, at);
}

function settingsAt(client: pg.ClientConfig, at: { host: string; port: number; database: string; user: string }): PostgresSettings {
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  return { client, where: `${host}:${at.port} database ${at.database}`, user: at.user };
}

/** libpq's keyword=value form ("host=db port=5432 dbname=orthanc"); undefined for anything else. */
export function parseKeywordValues(text: string): Record<string, string> | undefined {
  if (/^\s*postgres(ql)?:\/\//i.test(text)) return undefined;
  const pair = /\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)\s*/y;
  const values: Record<string, string> = {};
  while (pair.lastIndex < text.length) {
    const match = pair.exec(text);
    if (match === null) return undefined;
    const value = match[2]!;
    values[match[1]!] = (value.startsWith("'") ? value.slice(1, -1) : value).replace(/\\(.)/g, '$1');
  }
  return Object.keys(values).length > 0 ? values : undefined;
}

/** The one line that says why PostgreSQL cannot be used, and where to look. */
export function connectionProblem(settings: PostgresSettings, error: unknown): string {
  return (
    `cannot reach PostgreSQL at ${settings.where} (Orthanc's "PostgreSQL" section) for the tenants added through REST: ` +
    reasonOf(error)
  );
}

/** The one line for a failed statement; a missing right names the SQL that fixes it. */
export function statementProblem(settings: PostgresSettings, error: unknown): string {
  const at = `PostgreSQL at ${settings.where}`;
  // SQLSTATE 42501, insufficient privilege (no system error has such a code).
  if ((error as { code?: unknown } | undefined)?.code === '42501') {
    return (
      `cannot create or use the table ${TENANTS_TABLE} of the tenants added through REST in ${at}: ${reasonOf(error)}; ` +
      `grant the user ${settings.user} CREATE on the schema, or create the table beforehand: ${CREATE_TABLE}; ` +
      `GRANT SELECT, INSERT, UPDATE ON ${TENANTS_TABLE} TO ${settings.user}`
    );
  }
  return `the tenants added through REST, in the table ${TENANTS_TABLE} of ${at}: ${reasonOf(error)}`;
}

/** An error's own words: Node's AggregateError (every address of a host refused) has none of its own. */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') return [...new Set(error.errors.map(reasonOf))].join('; ');
  if (error instanceof Error && error.message === '' && 'code' in error) return String(error.code);
  return describeError(error);
}

/** PostgreSQL refused a statement (its SQLSTATE in `code`), as opposed to a failed connection. */
function isPgError(error: unknown): error is pg.DatabaseError & { code: string } {
  return loadedPg !== undefined && error instanceof loadedPg.DatabaseError && typeof error.code === 'string';
}

/** pg, once a PostgreSQL store has loaded it: an Orthanc on SQLite never does (it would add to every start-up). */
let loadedPg: typeof pg | undefined;

async function loadPg(): Promise<typeof pg> {
  loadedPg ??= (await import('pg')).default;
  return loadedPg;
}

/** How long a connection or a statement may take before the store gives up. */
const CONNECT_TIMEOUT_MS = 5_000;
const STATEMENT_TIMEOUT_MS = 10_000;

/** What the caller's change function threw: it passes through as it is. */
class ChangeFailed {
  constructor(readonly error: unknown) {}
}

/** A table of the plugin's own in Orthanc's PostgreSQL database, read and written by every node. */
export class PostgresTableStore implements TenantStore {
  readonly where: string;
  private pool: Promise<pg.Pool> | undefined;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly settings: PostgresSettings,
    /** This node's global property, where the tenants were kept before the table. */
    private readonly legacy: TenantStore,
    private readonly log: StoreLog,
  ) {
    this.where = `the table ${TENANTS_TABLE} of PostgreSQL at ${settings.where}`;
  }

  private poolOf(): Promise<pg.Pool> {
    this.pool ??= loadPg().then((postgres) => {
      const pool = new postgres.Pool({
        ...this.settings.client,
        max: 2,
        idleTimeoutMillis: 30_000,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        statement_timeout: STATEMENT_TIMEOUT_MS,
        query_timeout: STATEMENT_TIMEOUT_MS + 2_000,
        keepAlive: true,
        application_name: 'orthanc-multitenant-dicom',
      });
      // An idle connection that PostgreSQL closed: the next access opens another.
      pool.on('error', (error) =>
        this.log.warning(`multitenant-dicom: a connection to PostgreSQL at ${this.settings.where} ended: ${reasonOf(error)}`),
      );
      return pool;
    });
    return this.pool;
  }

  read(): Promise<string> {
    return this.withClient(async (client) => {
      const { rows } = await client.query<{ value: string }>(`SELECT value FROM ${TENANTS_TABLE} WHERE name = $1`, [ROW]);
      return rows[0]?.value ?? '';
    });
  }

  update(change: (text: string) => string): Promise<string> {
    return this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(`INSERT INTO ${TENANTS_TABLE} (name, value) VALUES ($1, '') ON CONFLICT (name) DO NOTHING`, [ROW]);
        // The row stays locked until COMMIT: another node's change waits for this one, then sees it.
        const { rows } = await client.query<{ value: string }>(`SELECT value FROM ${TENANTS_TABLE} WHERE name = $1 FOR UPDATE`, [ROW]);
        const current = rows[0]?.value ?? '';
        let next: string;
        try {
          next = change(current);
        } catch (error) {
          throw new ChangeFailed(error);
        }
        if (next !== current) await client.query(`UPDATE ${TENANTS_TABLE} SET value = $2 WHERE name = $1`, [ROW, next]);
        await client.query('COMMIT');
        return next;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  /** Closes the connections (tests; in Orthanc they end with the plugin's Node environment). */
  async close(): Promise<void> {
    await (await this.pool)?.end();
  }

  /** Runs `use` on a pooled connection, once the table is there; PostgreSQL's errors become TenantStoreErrors. */
  private async withClient<T>(use: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await (await this.poolOf()).connect();
    } catch (error) {
      throw new TenantStoreError(connectionProblem(this.settings, error));
    }
    let lost = false;
    try {
      this.ready ??= this.prepare(client).catch((error: unknown) => {
        this.ready = undefined; // tried again on the next access
        throw error;
      });
      await this.ready;
      return await use(client);
    } catch (error) {
      if (error instanceof ChangeFailed) throw error.error;
      if (error instanceof TenantStoreError) throw error;
      lost = !isPgError(error);
      throw new TenantStoreError(lost ? connectionProblem(this.settings, error) : statementProblem(this.settings, error));
    } finally {
      client.release(lost);
    }
  }

  /** Creates the table if missing; copies this node's global property into it if the table has no row yet. */
  private async prepare(client: pg.PoolClient): Promise<void> {
    // Looked up first: CREATE TABLE IF NOT EXISTS needs the right to create, even when the table exists.
    const { rows } = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [TENANTS_TABLE]);
    if (rows[0]?.present !== true) {
      try {
        await client.query(CREATE_TABLE);
        this.log.info(`multitenant-dicom: created ${this.where}, for the tenants added through REST`);
      } catch (error) {
        // 42P07: another node created it meanwhile; 23505: the same, caught in PostgreSQL's catalog.
        if (!isPgError(error) || (error.code !== '42P07' && error.code !== '23505')) throw error;
      }
    }
    const { rowCount } = await client.query(`SELECT 1 FROM ${TENANTS_TABLE} WHERE name = $1`, [ROW]);
    if (rowCount !== 0) return;
    let kept: string;
    try {
      kept = await this.legacy.read();
    } catch (error) {
      throw new TenantStoreError(`cannot read ${this.legacy.where}, where the tenants added through REST were kept before: ${reasonOf(error)}`);
    }
    const count = countServers(kept);
    if (count === 0) return;
    const copied = await client.query(`INSERT INTO ${TENANTS_TABLE} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [ROW, kept]);
    if (copied.rowCount === 1) {
      this.log.warning(
        `multitenant-dicom: copied the ${count} tenant(s) added through REST from ${this.legacy.where} (this node's own) ` +
          `into ${this.where}, which every node reads from now on`,
      );
    }
  }
}

/** How many entries a stored text holds (0 for "" or what cannot be read). */
function countServers(text: string): number {
  try {
    const parsed: unknown = text === '' ? {} : JSON.parse(text);
    return isJsonObject(parsed) && Array.isArray(parsed['Servers']) ? parsed['Servers'].length : 0;
  } catch {
    return 0;
  }
}
