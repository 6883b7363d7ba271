// The operator's view of the tenants (issue 10): what happened on each tenant's server,
// as the native shim reports it (ServerEvent, batched notifications moments after each
// operation). Here the facts are judged (outcome, audit event code) and kept: each
// tenant's state, counters since Orthanc started and per-minute history of the last
// hour; and passed on to the metrics (metrics.ts) and the audit trail (audit.ts).
import { AuditTrail, auditEntry, tenantChangeEntry, type AuditLine, type TenantChangeEntry } from './audit.js';
import type { Operation, ServerEvent, ServerState } from './bridge.js';
import type { AuditLogConfig, TenantConfig } from './configuration.js';
import { Metrics } from './metrics.js';
import { eventIdOf, OPERATIONS, outcomeOf, type OperationEvent, type Outcome } from './outcomes.js';

export type TenantState = ServerStateEvent['state'];
type ServerStateEvent = Extract<ServerEvent, { type: 'state' }>;

export const COUNTER_KEYS = [
  'Associations',
  'AssociationsRefused',
  'Echo',
  'Store',
  'StoreFailed',
  'Find',
  'FindFailed',
  'Move',
  'MoveFailed',
  'Get',
  'GetFailed',
  'InstancesReceived',
  'BytesReceived',
  'InstancesSent',
] as const;
export type Counters = Record<(typeof COUNTER_KEYS)[number], number>;

function zeroCounters(): Counters {
  return Object.fromEntries(COUNTER_KEYS.map((key) => [key, 0])) as Counters;
}

/**
 * What the counters count (README, "Operating"): `Associations` every association the
 * access rules judged, `AssociationsRefused` those they refused; `Echo`, `Store`, `Find`,
 * `Move`, `Get` every such command, whatever its outcome (refused ones included), and
 * `…Failed` those whose outcome is not Success (Refused or Failure);
 * `InstancesReceived` the C-STOREs that succeeded, `BytesReceived` the size of the
 * instances of every C-STORE, `InstancesSent` the instances C-MOVE and C-GET sent.
 */
export function count(counters: Counters, event: OperationEvent, outcome: Outcome): void {
  const failed = outcome !== 'Success';
  switch (event.operation) {
    case 'A-ASSOCIATE':
      counters.Associations++;
      if (failed) counters.AssociationsRefused++;
      return;
    case 'C-ECHO':
      counters.Echo++;
      return;
    case 'C-STORE':
      counters.Store++;
      if (failed) counters.StoreFailed++;
      else counters.InstancesReceived++;
      counters.BytesReceived += event.bytes ?? 0;
      return;
    case 'C-FIND':
      counters.Find++;
      if (failed) counters.FindFailed++;
      return;
    case 'C-MOVE':
      counters.Move++;
      if (failed) counters.MoveFailed++;
      counters.InstancesSent += event.instances ?? 0;
      return;
    case 'C-GET':
      counters.Get++;
      if (failed) counters.GetFailed++;
      counters.InstancesSent += event.instances ?? 0;
      return;
  }
}

// ---------------------------------------------------------------------------------------
// The last hour, minute by minute, for the status page's chart.

export const HISTORY_MINUTES = 60;
const MINUTE_MS = 60_000;

interface MinuteBucket {
  /** Start of the minute, ms since the epoch. */
  minute: number;
  operations: Record<Operation, number>;
  failed: number;
}

function emptyOperations(): Record<Operation, number> {
  return Object.fromEntries(OPERATIONS.map((operation) => [operation, 0])) as Record<Operation, number>;
}

/** Per-minute counts of the operations of one tenant, by the minute each began, over the last hour. */
export class MinuteHistory {
  private readonly buckets = new Map<number, MinuteBucket>();

  add(at: number, operation: Operation, failed: boolean, now: number): void {
    const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
    const oldest = Math.floor(now / MINUTE_MS) * MINUTE_MS - (HISTORY_MINUTES - 1) * MINUTE_MS;
    if (minute < oldest) return;
    let bucket = this.buckets.get(minute);
    if (bucket === undefined) {
      bucket = { minute, operations: emptyOperations(), failed: 0 };
      this.buckets.set(minute, bucket);
      for (const key of this.buckets.keys()) if (key < oldest) this.buckets.delete(key);
    }
    bucket.operations[operation]++;
    if (failed) bucket.failed++;
  }

  /** HISTORY_MINUTES values per operation, the oldest minute first, the current minute last. */
  series(now: number): { operations: Record<Operation, number[]>; failed: number[] } {
    const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const operations = Object.fromEntries(OPERATIONS.map((operation) => [operation, [] as number[]])) as Record<
      Operation,
      number[]
    >;
    const failed: number[] = [];
    for (let i = HISTORY_MINUTES - 1; i >= 0; i--) {
      const bucket = this.buckets.get(current - i * MINUTE_MS);
      for (const operation of OPERATIONS) operations[operation].push(bucket?.operations[operation] ?? 0);
      failed.push(bucket?.failed ?? 0);
    }
    return { operations, failed };
  }
}

export interface ActivityHistory {
  /** Start of the oldest minute (ISO 8601, UTC). */
  Start: string;
  MinuteSeconds: 60;
  Minutes: number;
  Tenants: { AET: string; Operations: Record<Operation, number[]>; Failed: number[] }[];
}

// ---------------------------------------------------------------------------------------
// Open connections to the tenants' ports.

/**
 * The ESTABLISHED TCP connections (state 01 in /proc/net/tcp and /proc/net/tcp6, as seen
 * from Orthanc's network namespace) whose local port is one of these, per port. The
 * framework has no hook for the end of an association: an open connection to the
 * tenant's port is an association in progress (or one about to start or end).
 */
export async function establishedConnections(
  ports: Iterable<number>,
  // node:fs/promises is loaded when first used: loading it costs Orthanc's start-up ~5 ms.
  read: (path: string) => Promise<string> = (path) => process.getBuiltinModule('node:fs/promises').readFile(path, 'latin1'),
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const port of ports) counts.set(port, 0);
  for (const path of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = await read(path);
    } catch {
      continue; // no IPv6, or no /proc
    }
    for (const line of table.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (fields[3] !== '01' || local === undefined) continue;
      const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      const counted = counts.get(port);
      if (counted !== undefined) counts.set(port, counted + 1);
    }
  }
  return counts;
}

// ---------------------------------------------------------------------------------------

export interface TenantStatus {
  AET: string;
  Port: number;
  Labels: string[];
  LabelsConstraint: TenantConfig['labelsConstraint'];
  LabelsStoreLevels: TenantConfig['labelsStoreLevels'];
  State: TenantState;
  /** Why the server failed; null unless State is "Failed". */
  Error: string | null;
  /** Open TCP connections to the tenant's port (0 unless it listens). */
  ActiveAssociations: number;
  Counters: Counters;
}

interface TenantRecord {
  tenant: TenantConfig;
  state: TenantState;
  error: string | null;
  counters: Counters;
  history: MinuteHistory;
}

export interface ActivityLog {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
}

export const METRICS_DISABLED =
  'MultitenantDicom: the metrics are disabled (MultitenantDicom.Metrics.Enabled, or else Orthanc\'s MetricsEnabled, is false)';

/** What the configuration asks of the operator's view: an audit trail (when given), metrics. */
export interface Observability {
  auditLog?: AuditLogConfig | undefined;
  metricsEnabled: boolean;
}

export interface ActivityOptions {
  now?: () => number;
  connections?: (ports: number[]) => Promise<Map<number, number>>;
}

/** What a C-FIND's answers concerned, for the audit trail: kept on this side (keepAudited), never sent to the shim. */
export interface AuditedResources {
  patientIds: string[];
  studyInstanceUids: string[];
}

/**
 * C-FIND answers kept for the audit trail until their report names them; beyond this many,
 * the oldest go (answers the shim did not use, after a timeout, are never named).
 */
export const MAX_KEPT_AUDITED = 256;

export class Activity {
  /** By the tenant's server index; in configuration order, then the tenants added through REST. */
  private records = new Map<number, TenantRecord>();
  /** Undefined when the metrics are disabled. */
  private metricsOfTenants: Metrics | undefined = new Metrics([]);
  private auditTrail: AuditTrail | undefined;
  private readonly auditedByKey = new Map<number, AuditedResources>();
  private nextAuditedKey = 0;
  private readonly now: () => number;
  private readonly connections: (ports: number[]) => Promise<Map<number, number>>;

  constructor(options: ActivityOptions = {}) {
    this.now = options.now ?? Date.now;
    this.connections = options.connections ?? ((ports) => establishedConnections(ports));
  }

  /** The tenants of the configuration, each "Stopped" until its server reports otherwise; the metrics and the audit trail if configured. */
  configure(servers: TenantConfig[], { auditLog, metricsEnabled }: Observability, log: ActivityLog): void {
    void this.auditTrail?.close();
    this.records = new Map();
    this.metricsOfTenants = metricsEnabled ? new Metrics([], () => this.activeAssociations()) : undefined;
    this.serve(servers, []);
    this.auditTrail =
      auditLog === undefined
        ? undefined
        : new AuditTrail(auditLog.path, {
            lost: (tenant, lost) => this.metricsOfTenants?.auditWriteFailures(tenant, lost),
            error: (message) => log.error(message),
            warning: (message) => log.warning(message),
          });
  }

  /**
   * The tenants served from now on (their servers were just applied, with these states): a
   * tenant kept keeps its counters, a new one starts at 0, a deleted one is forgotten.
   */
  serve(tenants: TenantConfig[], states: ServerState[]): void {
    const next = new Map<number, TenantRecord>();
    for (const tenant of tenants) {
      const record = this.records.get(tenant.index) ?? newRecord(tenant);
      record.tenant = tenant;
      next.set(tenant.index, record);
      this.metricsOfTenants?.addTenant(tenant.aet);
    }
    for (const [index, record] of this.records) {
      if (!next.has(index)) this.metricsOfTenants?.removeTenant(record.tenant.aet);
    }
    this.records = next;
    for (const state of states) {
      const record = next.get(state.index);
      if (record !== undefined) this.setState(record, state.state, state.error);
    }
  }

  /** A tenant created, changed or deleted through REST on this Orthanc: an audit event. */
  tenantChanged(tenant: TenantConfig, change: TenantChangeEntry['Operation']): void {
    this.auditTrail?.write(tenantChangeEntry(tenant, change, this.now()));
  }

  /** Undefined when the metrics are disabled. */
  get metrics(): Metrics | undefined {
    return this.metricsOfTenants;
  }

  /** Keeps what a C-FIND answered (its patients and studies) until its report names the key returned. */
  keepAudited(resources: AuditedResources): number {
    const key = this.nextAuditedKey;
    this.nextAuditedKey = (key + 1) % 0x8000_0000;
    this.auditedByKey.set(key, resources);
    if (this.auditedByKey.size > MAX_KEPT_AUDITED) this.auditedByKey.delete(this.auditedByKey.keys().next().value!);
    return key;
  }

  /** The audit trail; undefined when "AuditLog" is not configured. */
  get audit(): AuditTrail | undefined {
    return this.auditTrail;
  }

  record(events: ServerEvent[]): void {
    // The audit lines of the batch go to the file in one write.
    const auditLines: AuditLine[] = [];
    for (const event of events) {
      const record = this.records.get(event.tenant);
      if (record === undefined) continue; // a tenant deleted meanwhile
      switch (event.type) {
        case 'state':
          this.setState(record, event.state, event.error);
          if (event.state === 'Stopped' && [...this.records.values()].every((other) => other.state !== 'Listening')) {
            // Orthanc is stopping: the operations have ended, write what is still buffered.
            this.auditTrail?.writeAll(auditLines.splice(0));
            this.auditTrail?.flushSync();
          }
          break;
        case 'timeout':
          this.metricsOfTenants?.javascriptTimeout(record.tenant.aet);
          break;
        case 'operation':
          this.operation(record, event, auditLines);
          break;
      }
    }
    this.auditTrail?.writeAll(auditLines);
  }

  private setState(record: TenantRecord, state: TenantState, error: string | undefined): void {
    record.state = state;
    record.error = state === 'Failed' ? (error ?? 'unknown error') : null;
    this.metricsOfTenants?.state(record.tenant.aet, state);
  }

  private operation(record: TenantRecord, event: OperationEvent, auditLines: AuditLine[]): void {
    const outcome = outcomeOf(event);
    const aet = record.tenant.aet;
    count(record.counters, event, outcome);
    record.history.add(event.at, event.operation, outcome !== 'Success', this.now());
    this.metricsOfTenants?.operation(aet, event, outcome);
    if (this.auditTrail === undefined) return;
    auditLines.push(auditEntry(aet, this.withAudited(event), outcome, eventIdOf(event)));
  }

  /** A C-FIND's event with the patients and studies of the answers it names. */
  private withAudited(event: OperationEvent): OperationEvent {
    if (event.auditedKey === undefined) return event;
    const audited = this.auditedByKey.get(event.auditedKey);
    this.auditedByKey.delete(event.auditedKey);
    return audited === undefined ? event : { ...event, patientIds: audited.patientIds, studyInstanceUids: audited.studyInstanceUids };
  }

  /** Every tenant's status, in configuration order. */
  async tenants(): Promise<TenantStatus[]> {
    const active = await this.activeAssociations();
    return [...this.records.values()].map((record) => ({
      AET: record.tenant.aet,
      Port: record.tenant.port,
      Labels: [...record.tenant.labels],
      LabelsConstraint: record.tenant.labelsConstraint,
      LabelsStoreLevels: [...record.tenant.labelsStoreLevels],
      State: record.state,
      Error: record.error,
      ActiveAssociations: active.get(record.tenant.aet) ?? 0,
      Counters: { ...record.counters },
    }));
  }

  /** The per-minute history of every tenant over the last hour. */
  history(): ActivityHistory {
    const now = this.now();
    const start = Math.floor(now / MINUTE_MS) * MINUTE_MS - (HISTORY_MINUTES - 1) * MINUTE_MS;
    return {
      Start: new Date(start).toISOString(),
      MinuteSeconds: 60,
      Minutes: HISTORY_MINUTES,
      Tenants: [...this.records.values()].map((record) => {
        const { operations, failed } = record.history.series(now);
        return { AET: record.tenant.aet, Operations: operations, Failed: failed };
      }),
    };
  }

  /** Open connections to each listening tenant's port, by AET (a port that failed may be another process's). */
  private async activeAssociations(): Promise<Map<string, number>> {
    const listening = [...this.records.values()].filter((record) => record.state === 'Listening');
    const byPort = listening.length === 0 ? new Map<number, number>() : await this.connections(listening.map((r) => r.tenant.port));
    return new Map(listening.map((record) => [record.tenant.aet, byPort.get(record.tenant.port) ?? 0]));
  }
}

function newRecord(tenant: TenantConfig): TenantRecord {
  return { tenant, state: 'Stopped', error: null, counters: zeroCounters(), history: new MinuteHistory() };
}
