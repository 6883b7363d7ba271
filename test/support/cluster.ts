// Several Orthanc nodes with the plugin, sharing one PostgreSQL database: the index and
// the DICOM files (`"EnableStorage": true`, so the nodes share no folder), with
// `"Lock": false` so that every node may write. Every node gets the same configuration
// and the same MultitenantDicom section (same AETs, labels and options); only its ports
// differ (HTTP, DICOM, and each tenant's), as they would on one machine.
import { freePort, startOrthanc, type RunningOrthanc } from './orthanc.js';
import { PLUGIN_PATH } from './plugin.js';
import type { PostgresDatabase } from './postgresql.js';

export const POSTGRESQL_INDEX_PLUGIN = '/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so';
export const POSTGRESQL_STORAGE_PLUGIN = '/usr/share/orthanc/plugins/libOrthancPostgreSQLStorage.so';

/** A `MultitenantDicom.Servers` entry without its port (each node has its own). */
export interface ClusterTenant {
  AET: string;
  Labels: string[];
  [key: string]: unknown;
}

export interface ClusterOptions {
  database: PostgresDatabase;
  tenants: ClusterTenant[];
  /** Orthanc configuration shared by every node (e.g. DicomModalities, DicomThreadsCount). */
  configuration?: Record<string, unknown>;
  /** Keys of the PostgreSQL section that replace the defaults of postgresqlSection. */
  postgresql?: Record<string, unknown>;
  env?: Record<string, string>;
}

export interface ClusterNode {
  /** "node1", "node2", ...: also its DatabaseServerIdentifier. */
  name: string;
  orthanc: RunningOrthanc;
  /** This node's DICOM port of each tenant, by AET. */
  ports: Record<string, number>;
  /** A tenant's DICOM server on this node, for the DCMTK helpers (`port`, `calledAet`). */
  tenant(aet: string): { port: number; calledAet: string };
}

/**
 * The PostgreSQL section of every node: index and storage in the database, no lock (the
 * nodes write at the same time), a few index connections per node so that a node's
 * concurrent requests are not serialised on one connection.
 */
export function postgresqlSection(database: PostgresDatabase, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    EnableIndex: true,
    EnableStorage: true,
    Host: database.host,
    Port: database.port,
    Database: database.database,
    Username: database.username,
    Password: database.password,
    Lock: false,
    IndexConnectionsCount: 4,
    MaximumConnectionRetries: 10,
    ConnectionRetryInterval: 1,
    ...overrides,
  };
}

/** Starts node number `number` (1, 2, ...) of a cluster. */
export async function startClusterNode(options: ClusterOptions, number: number): Promise<ClusterNode> {
  const name = `node${number}`;
  const ports: Record<string, number> = {};
  for (const tenant of options.tenants) ports[tenant.AET] = await freePort();
  const orthanc = await startOrthanc({
    configuration: {
      Name: `cluster-${name}`,
      // Global properties of each node are kept apart in the shared database.
      DatabaseServerIdentifier: name,
      HttpPort: await freePort(),
      DicomPort: await freePort(),
      ...options.configuration,
      PostgreSQL: postgresqlSection(options.database, options.postgresql),
      MultitenantDicom: { Servers: options.tenants.map((tenant) => ({ ...tenant, Port: ports[tenant.AET] })) },
    },
    plugins: [PLUGIN_PATH, POSTGRESQL_INDEX_PLUGIN, POSTGRESQL_STORAGE_PLUGIN],
    env: options.env,
    waitForPorts: Object.values(ports),
    // The first node creates the schema; a loaded machine takes its time.
    startTimeoutMs: 180_000,
  });
  const tenant = (aet: string) => {
    const port = ports[aet];
    if (port === undefined) throw new Error(`${name} has no tenant ${aet}`);
    return { port, calledAet: aet };
  };
  return { name, orthanc, ports, tenant };
}

/** Starts `count` nodes at once (as a cluster restarts), on a database that may be empty. */
export function startCluster(options: ClusterOptions, count: number): Promise<ClusterNode[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startClusterNode(options, i + 1)));
}
