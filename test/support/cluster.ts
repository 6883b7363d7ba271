// Several Orthanc nodes with the plugin, sharing one PostgreSQL database: the index and
// the DICOM files (`"EnableStorage": true`, so the nodes share no folder), with
// `"Lock": false` so that every node may write. Every node gets the same configuration
// and the same MultitenantDicom section (same AETs, labels and options); only its ports
// differ (HTTP, DICOM, and each tenant's), as they would on one machine. A node may run in
// a network namespace of its own (test/support/network-namespace.ts), as on another host:
// then it can listen on the same ports as a node of the test's namespace (a tenant added
// at run time has one port on every node).
import type { NetworkNamespace } from './network-namespace.js';
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
  /** What differs per node, by node number - 1 (node 1 is nodes[0]). */
  nodes?: ClusterNodeOptions[];
}

export interface ClusterNodeOptions {
  /** Runs the node in this network namespace, as on another host (reached at its address). */
  networkNamespace?: NetworkNamespace;
  /** Keys of this node's PostgreSQL section, over those of ClusterOptions.postgresql (e.g. the Host it reaches the server at). */
  postgresql?: Record<string, unknown>;
}

export interface ClusterNode {
  /** "node1", "node2", ...: also its DatabaseServerIdentifier. */
  name: string;
  orthanc: RunningOrthanc;
  /** The address its HTTP and DICOM ports (Orthanc's and the tenants') are reached at. */
  host: string;
  /** This node's DICOM port of each tenant, by AET. */
  ports: Record<string, number>;
  /** A tenant's DICOM server on this node, for the DCMTK helpers (`host`, `port`, `calledAet`). */
  tenant(aet: string): { host: string; port: number; calledAet: string };
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
  const own = options.nodes?.[number - 1] ?? {};
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
      PostgreSQL: postgresqlSection(options.database, { ...options.postgresql, ...own.postgresql }),
      MultitenantDicom: { Servers: options.tenants.map((tenant) => ({ ...tenant, Port: ports[tenant.AET] })) },
    },
    plugins: [PLUGIN_PATH, POSTGRESQL_INDEX_PLUGIN, POSTGRESQL_STORAGE_PLUGIN],
    env: options.env,
    networkNamespace: own.networkNamespace,
    waitForPorts: Object.values(ports),
    // The first node creates the schema; a loaded machine takes its time.
    startTimeoutMs: 180_000,
  });
  const tenant = (aet: string) => {
    const port = ports[aet];
    if (port === undefined) throw new Error(`${name} has no tenant ${aet}`);
    return { host: orthanc.host, port, calledAet: aet };
  };
  return { name, orthanc, host: orthanc.host, ports, tenant };
}

/** Starts `count` nodes at once (as a cluster restarts), on a database that may be empty. */
export function startCluster(options: ClusterOptions, count: number): Promise<ClusterNode[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startClusterNode(options, i + 1)));
}
