// The tenants' metrics in the Prometheus text format (GET /plugins/multitenant-dicom/metrics),
// with prom-client. A registry of its own: no process-wide series (Orthanc publishes its
// own at /tools/metrics-prometheus, which this plugin leaves alone). Every series is
// labelled by tenant (tenant="AET"), and every tenant's series exist from the start, at 0.
import { Counter, Gauge, Histogram, Registry } from './prometheus.js';
import type { ServerEvent } from './bridge.js';
import { COMMANDS, type OperationEvent, type Outcome } from './outcomes.js';

const PREFIX = 'multitenant_dicom_';
const OUTCOMES = ['success', 'refused', 'failure'] as const;

/** Seconds: from a C-ECHO on the loopback (well under a millisecond) to a C-MOVE of a large study. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'tenant' | 'operation' | 'outcome'>;
  private readonly duration: Histogram<'tenant' | 'operation'>;
  private readonly associations: Counter<'tenant'>;
  private readonly associationsRefused: Counter<'tenant'>;
  private readonly listening: Gauge<'tenant'>;
  private readonly receivedBytes: Counter<'tenant'>;
  private readonly receivedInstances: Counter<'tenant'>;
  private readonly sentInstances: Counter<'tenant'>;
  private readonly timeouts: Counter<'tenant'>;
  private readonly auditFailures: Counter<'tenant'>;
  private readonly activeAssociationsGauge: Gauge<'tenant'>;

  private readonly tenants = new Set<string>();

  /** `activeAssociations`: open connections per tenant AET, read when the metrics are. */
  constructor(
    tenants: string[],
    activeAssociations: () => Promise<Map<string, number>> = async () => new Map(),
  ) {
    const registers = [this.registry];
    const tenantsNow = this.tenants;
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name: PREFIX + name, help, labelNames, registers });

    this.requests = counter(
      'requests_total',
      'DICOM commands received by the tenant, by operation and outcome (success: status 0x0000 or a warning; refused: by the access rules or the isolation of tenants, or an unknown move destination; failure: anything else)',
      ['tenant', 'operation', 'outcome'],
    );
    this.duration = new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: 'Time from a DICOM command\'s arrival to its final answer, by operation',
      labelNames: ['tenant', 'operation'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.associations = counter('associations_total', 'Associations the access rules judged (accepted or refused)', ['tenant']);
    this.associationsRefused = counter('associations_refused_total', 'Associations refused by the access rules', ['tenant']);
    this.activeAssociationsGauge = new Gauge({
      name: `${PREFIX}active_associations`,
      help: 'Open TCP connections to the tenant\'s port (ESTABLISHED in /proc/net/tcp and tcp6), read at each scrape',
      labelNames: ['tenant'],
      registers,
      async collect() {
        const open = await activeAssociations();
        for (const tenant of tenantsNow) this.set({ tenant }, open.get(tenant) ?? 0);
      },
    });
    this.listening = new Gauge({
      name: `${PREFIX}listening`,
      help: 'Whether the tenant\'s DICOM server listens on its port (1) or not (0: stopped, or its port failed)',
      labelNames: ['tenant'],
      registers,
    });
    this.receivedBytes = counter('received_bytes_total', 'Size of the instances of every C-STORE (stored or not)', ['tenant']);
    this.receivedInstances = counter('received_instances_total', 'Instances stored by C-STORE (success)', ['tenant']);
    this.sentInstances = counter('sent_instances_total', 'Instances sent by C-MOVE and C-GET', ['tenant']);
    this.timeouts = counter(
      'javascript_timeouts_total',
      'Questions of the tenant\'s server to the JavaScript side that got no answer by their deadline',
      ['tenant'],
    );
    this.auditFailures = counter(
      'audit_write_failures_total',
      'Audit events of the tenant that could not be written to the audit trail (unwritable file, full disk)',
      ['tenant'],
    );

    for (const tenant of tenants) this.addTenant(tenant);
  }

  /** Every series of a tenant, at 0 (a tenant of the configuration, or added through REST). */
  addTenant(tenant: string): void {
    if (this.tenants.has(tenant)) return;
    this.tenants.add(tenant);
    for (const operation of COMMANDS) {
      for (const outcome of OUTCOMES) this.requests.inc({ tenant, operation, outcome }, 0);
      this.duration.zero({ tenant, operation });
    }
    for (const metric of this.perTenantCounters()) metric.inc({ tenant }, 0);
    this.listening.set({ tenant }, 0);
  }

  /** A tenant deleted through REST: its series end. */
  removeTenant(tenant: string): void {
    if (!this.tenants.delete(tenant)) return;
    for (const operation of COMMANDS) {
      for (const outcome of OUTCOMES) this.requests.remove({ tenant, operation, outcome });
      this.duration.remove({ tenant, operation });
    }
    for (const metric of this.perTenantCounters()) metric.remove({ tenant });
    this.listening.remove({ tenant });
    this.activeAssociationsGauge.remove({ tenant });
  }

  private perTenantCounters(): Counter<'tenant'>[] {
    return [
      this.associations,
      this.associationsRefused,
      this.receivedBytes,
      this.receivedInstances,
      this.sentInstances,
      this.timeouts,
      this.auditFailures,
    ];
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  operation(tenant: string, event: OperationEvent, outcome: Outcome): void {
    if (event.operation === 'A-ASSOCIATE') {
      this.associations.inc({ tenant });
      if (outcome !== 'Success') this.associationsRefused.inc({ tenant });
      return;
    }
    const operation = event.operation;
    this.requests.inc({ tenant, operation, outcome: outcome.toLowerCase() });
    this.duration.observe({ tenant, operation }, event.durationMs / 1000);
    if (operation === 'C-STORE') {
      this.receivedBytes.inc({ tenant }, event.bytes ?? 0);
      if (outcome === 'Success') this.receivedInstances.inc({ tenant });
    }
    if ((operation === 'C-MOVE' || operation === 'C-GET') && event.instances) {
      this.sentInstances.inc({ tenant }, event.instances);
    }
  }

  state(tenant: string, state: Extract<ServerEvent, { type: 'state' }>['state']): void {
    this.listening.set({ tenant }, state === 'Listening' ? 1 : 0);
  }

  javascriptTimeout(tenant: string): void {
    this.timeouts.inc({ tenant });
  }

  auditWriteFailures(tenant: string, count: number): void {
    this.auditFailures.inc({ tenant }, count);
  }
}
