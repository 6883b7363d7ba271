// The audit trail: one JSON object per DICOM operation through a tenant, one per line,
// appended to MultitenantDicom.AuditLog.Path through pino's SonicBoom destination
// (asynchronous writes on the JavaScript thread's event loop: no worker thread, nothing
// for esbuild to leave out). Each line is the entry's JSON.stringify: its keys are already
// in order, and pino's logger would only serialise it again, key by key (about a quarter
// of what an audit event cost the JavaScript thread). Writing never blocks or fails a DICOM
// operation: the shim reports operations after their answer, as notifications; an
// unwritable file or a full disk loses the events it cannot write, counts them in the
// metrics (audit_write_failures_total) and logs one error per cause, not per event.
// GET /plugins/multitenant-dicom/audit reads the file back from its end (readAuditTrail).
import type pino from 'pino';
import type { Operation } from './bridge.js';
import type { TenantConfig } from './configuration.js';
import type { OperationEvent, Outcome } from './outcomes.js';

/** One line of the audit trail; the keys in this order, those of other operations absent. */
export interface AuditEntry {
  /** When the operation began: ISO 8601, UTC, milliseconds. */
  Time: string;
  /** The tenant's AET. */
  Tenant: string;
  Operation: Operation;
  EventID: number;
  Outcome: Outcome;
  /** The DICOM status answered, "0x0124"; null when there is none (an association, a command refused before any status). */
  Status: string | null;
  CallingAET: string;
  CalledAET: string;
  PeerAddress: string;
  /** C-FIND, C-MOVE, C-GET: QueryRetrieveLevel as received (null when absent, or the command was refused before it was read). */
  Level?: string | null;
  /** C-FIND, C-MOVE, C-GET: the keys as received, by keyword (by tag "gggg,eeee" when it has none); an empty key is "", a binary or sequence value null. */
  Query?: Record<string, string | null> | null;
  /** C-STORE: the instance's; C-FIND: those answered; C-MOVE, C-GET: those of the instances sent. */
  PatientIDs?: string[];
  StudyInstanceUIDs?: string[];
  /** C-STORE; null when refused before the instance was read. */
  SOPInstanceUID?: string | null;
  /** C-MOVE, C-GET: the instances sent. */
  Instances?: number;
  /** C-MOVE: the destination's AET. */
  Destination?: string;
  DurationMs: number;
}

/**
 * A tenant created, changed or deleted through REST (PUT and DELETE /tenants/{AET}) on this
 * Orthanc. EventID 110113 Security Alert, of the event type Security Configuration (DCM
 * 110129): who may see which images changed.
 */
export interface TenantChangeEntry {
  Time: string;
  Tenant: string;
  Operation: TenantChange;
  EventID: typeof SECURITY_ALERT;
  Outcome: 'Success';
  Status: null;
  /** The tenant as it is now (DELETED: as it was). */
  Port: number;
  Labels: string[];
  LabelsConstraint: TenantConfig['labelsConstraint'];
}

export const TENANT_CHANGES = ['TENANT-CREATED', 'TENANT-CHANGED', 'TENANT-DELETED'] as const;
export type TenantChange = (typeof TENANT_CHANGES)[number];
const SECURITY_ALERT = 110113;

/** A line of the audit trail. */
export type AuditLine = AuditEntry | TenantChangeEntry;

export function tenantChangeEntry(tenant: TenantConfig, change: TenantChange, at: number): TenantChangeEntry {
  return {
    Time: new Date(at).toISOString(),
    Tenant: tenant.aet,
    Operation: change,
    EventID: SECURITY_ALERT,
    Outcome: 'Success',
    Status: null,
    Port: tenant.port,
    Labels: [...tenant.labels],
    LabelsConstraint: tenant.labelsConstraint,
  };
}

const QUERY_RETRIEVE_LEVEL = '0008,0052';

/** "0x0124": the status as four upper-case hexadecimal digits. */
export function statusText(status: number | undefined): string | null {
  return status === undefined ? null : `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The audit line of an operation of tenant `aet`, judged (outcomes.ts). */
export function auditEntry(aet: string, event: OperationEvent, outcome: Outcome, eventId: number): AuditEntry {
  // DurationMs comes last: the keys are written in the order they are set.
  const entry = {
    Time: new Date(event.at).toISOString(),
    Tenant: aet,
    Operation: event.operation,
    EventID: eventId,
    Outcome: outcome,
    Status: statusText(event.status),
    CallingAET: event.callingAet,
    CalledAET: event.calledAet,
    PeerAddress: event.peer,
  } as AuditEntry;
  const operation = event.operation;
  if (operation === 'C-FIND' || operation === 'C-MOVE' || operation === 'C-GET') {
    const level = event.query?.find((element) => element.tag === QUERY_RETRIEVE_LEVEL)?.value;
    entry.Level = level === undefined || level === null ? null : level.trim();
    entry.Query =
      event.query === undefined
        ? null
        : Object.fromEntries(event.query.map((element) => [element.name ?? element.tag, element.value]));
  }
  if (operation === 'C-STORE' || operation === 'C-FIND' || operation === 'C-MOVE' || operation === 'C-GET') {
    entry.PatientIDs = event.patientIds ?? [];
    entry.StudyInstanceUIDs = event.studyInstanceUids ?? [];
  }
  if (operation === 'C-STORE') entry.SOPInstanceUID = event.sopInstanceUid ?? null;
  if (operation === 'C-MOVE' || operation === 'C-GET') entry.Instances = event.instances ?? 0;
  if (operation === 'C-MOVE') entry.Destination = event.destination ?? '';
  entry.DurationMs = Math.round(event.durationMs * 1000) / 1000;
  return entry;
}

// ---------------------------------------------------------------------------------------
// Writing.

export interface AuditTrailHooks {
  /** `count` events of `tenant` could not be written. */
  lost(tenant: string, count: number): void;
  error(message: string): void;
  warning(message: string): void;
}

type Destination = ReturnType<typeof pino.destination>;

// Loaded when an audit trail opens: pino costs Orthanc's start-up ~8 ms, and a
// configuration without AuditLog never uses it. (esbuild bundles the require.)
let loadedPino: typeof pino | undefined;
function pinoModule(): typeof pino {
  return (loadedPino ??= require('pino') as typeof pino);
}

/** After a failure, the file is opened again at most this often; events in between are lost. */
export const AUDIT_RETRY_MS = 1_000;
/** What may wait in memory for a slow disk; beyond it, events are lost (and counted). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export class AuditTrail {
  private destination: Destination | undefined;
  /** The lines handed to the current destination and not yet written: where each ends (bytes) and its tenant. */
  private pending: { end: number; tenant: string }[] = [];
  /** The first of `pending` not yet written (an index, not shift(): shifting a long backlog line by line is quadratic). */
  private pendingHead = 0;
  private submitted = 0;
  private written = 0;
  private confirmedEnd = 0;
  /** A failed destination stopped in the middle of a line: the next line starts on a new one. */
  private partialLine = false;
  private retryAt = 0;
  /** The causes of the current failure, each logged once; cleared once a line is written again. */
  private readonly failures = new Set<string>();
  private lostSinceFailure = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Set by the destination's 'drop' event during a write: the line was not taken. */
  private dropped = false;

  constructor(
    readonly path: string,
    private readonly hooks: AuditTrailHooks,
    private readonly now: () => number = Date.now,
  ) {
    this.open();
  }

  /** Appends the entry; never throws, never waits. */
  write(entry: AuditLine): void {
    this.writeAll([entry]);
  }

  /**
   * Appends the entries in one write of the destination (one write to the file, one
   * wake-up of the JavaScript thread when it is done, for a whole batch of events);
   * never throws, never waits.
   */
  writeAll(entries: AuditLine[]): void {
    if (this.closed || entries.length === 0) return;
    if (this.destination === undefined) {
      if (this.now() < this.retryAt) {
        this.loseLines(entries.map((entry) => entry.Tenant));
        return;
      }
      this.open();
    }
    try {
      this.send(entries);
    } catch (error) {
      this.loseLines(entries.map((entry) => entry.Tenant));
      this.fail(this.destination, error);
    }
  }

  /** Resolves once every line handed over so far is written or lost (or after `timeoutMs`). */
  settled(timeoutMs = 1_000): Promise<void> {
    if (this.unwrittenLines() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Writes what is still buffered, synchronously (Orthanc is stopping); never throws. */
  flushSync(): void {
    try {
      if (this.destination !== undefined && fileDescriptor(this.destination) >= 0) this.destination.flushSync();
    } catch {
      // nothing more can be done here
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const destination = this.destination;
    this.destination = undefined;
    if (destination === undefined || fileDescriptor(destination) < 0) return;
    await new Promise<void>((resolve) => {
      destination.once('close', () => resolve());
      destination.once('error', () => resolve());
      try {
        destination.end();
      } catch {
        resolve();
      }
    });
  }

  private open(): void {
    const destination = pinoModule().destination({ dest: this.path, sync: false, minLength: 0, maxLength: MAX_BUFFERED_BYTES, append: true });
    this.pending = [];
    this.pendingHead = 0;
    this.submitted = 0;
    this.written = 0;
    this.confirmedEnd = 0;
    destination.on('write', (bytes: number) => this.onWritten(destination, bytes));
    destination.on('error', (error: unknown) => this.fail(destination, error));
    destination.on('drop', () => {
      this.dropped = true;
    });
    this.destination = destination;
  }

  /** The entries' lines, for the current destination, in one write. */
  private send(entries: AuditLine[]): void {
    const destination = this.destination;
    if (destination === undefined) throw new Error('the audit trail is not open');
    // Exactly the entries' fields, "Time" first: no level, pid, hostname or msg.
    const lines = entries.map((entry) => `${JSON.stringify(entry)}\n`);
    const start = this.partialLine ? '\n' : '';
    this.dropped = false;
    destination.write(start + lines.join(''));
    if (this.dropped) {
      this.loseLines(entries.map((entry) => entry.Tenant));
      return;
    }
    this.partialLine = false;
    this.submitted += Buffer.byteLength(start);
    lines.forEach((line, index) => {
      this.submitted += Buffer.byteLength(line);
      this.pending.push({ end: this.submitted, tenant: entries[index]!.Tenant });
    });
  }

  private onWritten(destination: Destination, bytes: number): void {
    if (destination !== this.destination) return;
    this.written += bytes;
    let confirmed = 0;
    while (this.pendingHead < this.pending.length && this.pending[this.pendingHead]!.end <= this.written) {
      this.confirmedEnd = this.pending[this.pendingHead++]!.end;
      confirmed++;
    }
    if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    }
    if (confirmed > 0 && this.failures.size > 0) {
      this.hooks.warning(
        `multitenant-dicom: the audit trail ${this.path} is written again; ${this.lostSinceFailure} audit event(s) could not be written before`,
      );
      this.failures.clear();
      this.lostSinceFailure = 0;
    }
    if (this.unwrittenLines() === 0) this.wakeIdleWaiters();
  }

  private fail(destination: Destination | undefined, error: unknown): void {
    if (destination === undefined || destination !== this.destination) return;
    this.destination = undefined;
    this.retryAt = this.now() + AUDIT_RETRY_MS;
    this.partialLine = this.partialLine || this.written > this.confirmedEnd;
    const lost = this.pending.slice(this.pendingHead);
    this.pending = [];
    this.pendingHead = 0;
    const cause = describeCause(error);
    if (!this.failures.has(cause)) {
      this.failures.add(cause);
      this.hooks.error(
        `multitenant-dicom: cannot write the audit trail ${this.path}: ${cause}; the audit events that cannot be written are ` +
          'lost and counted in multitenant_dicom_audit_write_failures_total (DICOM operations go on)',
      );
    }
    this.loseLines(lost.map((line) => line.tenant));
    if (fileDescriptor(destination) >= 0) {
      try {
        destination.destroy();
      } catch {
        // already closed
      }
    }
    this.wakeIdleWaiters();
  }

  private unwrittenLines(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Lines that will not be written, each of its tenant. */
  private loseLines(tenants: string[]): void {
    const byTenant = new Map<string, number>();
    for (const tenant of tenants) byTenant.set(tenant, (byTenant.get(tenant) ?? 0) + 1);
    for (const [tenant, count] of byTenant) this.lose(tenant, count);
  }

  private lose(tenant: string, count: number): void {
    this.lostSinceFailure += count;
    this.hooks.lost(tenant, count);
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** The destination's file descriptor, -1 until its file is open (SonicBoom's types leave it out). */
function fileDescriptor(destination: Destination): number {
  return (destination as unknown as { fd: number }).fd;
}

function describeCause(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code !== undefined && !error.message.startsWith(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

// ---------------------------------------------------------------------------------------
// Reading: GET /plugins/multitenant-dicom/audit.

export interface AuditQuery {
  tenant?: string;
  operation?: Operation | TenantChange;
  /** ms since the epoch: Time at or after. */
  since?: number;
  /** ms since the epoch: Time before. */
  until?: number;
  /** A PatientID among the entry's PatientIDs. */
  patient?: string;
  limit: number;
}

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 10_000;
const OPERATION_NAMES: readonly string[] = ['A-ASSOCIATE', 'C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET', ...TENANT_CHANGES];

/** A bad query parameter of GET /audit. */
export class AuditParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuditParameterError';
  }
}

// A date (midnight UTC), or a date and time with a time zone; a "+" of the zone may arrive as a space.
const ISO_DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2}))?$/;

function parseTime(parameter: string, text: string): number {
  const match = ISO_DATE_TIME.exec(text.replace(/ (\d{2}:?\d{2})$/, '+$1'));
  const time = match === null ? NaN : Date.parse(match[2] === undefined ? `${match[1]}T00:00:00Z` : `${match[1]}T${match[2]}${match[3]}`);
  if (Number.isNaN(time)) {
    throw new AuditParameterError(
      parameter,
      `"${parameter}" must be an ISO 8601 date (2026-12-06) or date and time with a time zone (2026-12-06T10:00:00Z), got ${JSON.stringify(text)}`,
    );
  }
  return time;
}

/** The filter of GET /audit from its query parameters; throws an AuditParameterError naming a bad one. */
export function parseAuditQuery(parameters: Record<string, string>): AuditQuery {
  const query: AuditQuery = { limit: AUDIT_DEFAULT_LIMIT };
  for (const [name, value] of Object.entries(parameters)) {
    switch (name) {
      case 'tenant':
      case 'patient':
        if (value === '') throw new AuditParameterError(name, `"${name}" must not be empty`);
        query[name] = value;
        break;
      case 'operation':
        if (!OPERATION_NAMES.includes(value)) {
          throw new AuditParameterError(name, `"operation" must be one of ${OPERATION_NAMES.join(', ')}, got ${JSON.stringify(value)}`);
        }
        query.operation = value as Operation | TenantChange;
        break;
      case 'since':
      case 'until':
        query[name] = parseTime(name, value);
        break;
      case 'limit': {
        const limit = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
        if (!(limit >= 1 && limit <= AUDIT_MAX_LIMIT)) {
          throw new AuditParameterError(name, `"limit" must be an integer from 1 to ${AUDIT_MAX_LIMIT}, got ${JSON.stringify(value)}`);
        }
        query.limit = limit;
        break;
      }
      default:
        throw new AuditParameterError(name, `unknown parameter "${name}" (known: tenant, operation, since, until, patient, limit)`);
    }
  }
  return query;
}

export function matches(entry: AuditLine, query: AuditQuery): boolean {
  if (query.tenant !== undefined && entry.Tenant !== query.tenant) return false;
  if (query.operation !== undefined && entry.Operation !== query.operation) return false;
  if (query.since !== undefined || query.until !== undefined) {
    const time = Date.parse(entry.Time);
    if (query.since !== undefined && !(time >= query.since)) return false;
    if (query.until !== undefined && !(time < query.until)) return false;
  }
  if (query.patient !== undefined && !('PatientIDs' in entry && (entry.PatientIDs ?? []).includes(query.patient))) return false;
  return true;
}

/** The reading gave up at its deadline. */
export class AuditDeadlineError extends Error {}

const CHUNK_BYTES = 64 * 1024;
/**
 * Lines are appended as operations end, and Time is when each began: the backward scan
 * for `since` stops at a line that ended this long before it (the lines before it ended
 * earlier still, give or take the order in which concurrent operations were reported).
 */
const SCAN_MARGIN_MS = 60 * 60 * 1000;

/**
 * The newest `query.limit` entries of the file that match, oldest first. Reads from the end
 * backwards, a chunk at a time, never the whole file at once; stops once it has enough,
 * or reaches entries that ended well before `since`. Lines that are not JSON objects (a
 * line cut short by a full disk) are skipped. A missing file has no entries.
 */
export async function readAuditTrail(path: string, query: AuditQuery, deadline = Infinity): Promise<AuditLine[]> {
  let handle;
  try {
    handle = await process.getBuiltinModule('node:fs/promises').open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  try {
    const found: AuditLine[] = [];
    let position = (await handle.stat()).size;
    let carry = Buffer.alloc(0); // the start of a line whose beginning is further back
    scan: while (position > 0) {
      if (Date.now() >= deadline) throw new AuditDeadlineError('the audit trail could not be searched in time; narrow the search with "since"');
      const length = Math.min(CHUNK_BYTES, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(chunk, read, length - read, position + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const data = carry.length === 0 ? chunk : Buffer.concat([chunk, carry]);
      carry = Buffer.alloc(0);
      // The lines of `data`, the last first; its first line may begin in the chunk before.
      for (let end = data.length; ; ) {
        const newline = end === 0 ? -1 : data.lastIndexOf(0x0a, end - 1);
        if (newline < 0 && position > 0) {
          carry = data.subarray(0, end);
          break;
        }
        const entry = parseLine(data.subarray(newline + 1, end));
        if (entry !== undefined) {
          if (query.since !== undefined && Date.parse(entry.Time) + ('DurationMs' in entry ? entry.DurationMs : 0) < query.since - SCAN_MARGIN_MS) break scan;
          if (matches(entry, query)) {
            found.push(entry);
            if (found.length >= query.limit) break scan;
          }
        }
        if (newline < 0) break;
        end = newline;
      }
    }
    return found.reverse();
  } finally {
    await handle.close();
  }
}

function parseLine(bytes: Buffer): AuditLine | undefined {
  if (bytes.length < 2) return undefined;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const entry = value as AuditLine;
    return typeof entry.Time === 'string' && typeof entry.Tenant === 'string' ? entry : undefined;
  } catch {
    return undefined;
  }
}
