// Tenants added, changed and removed at run time (PUT and DELETE
// /plugins/multitenant-dicom/tenants/{AET}), without a restart. They live in Orthanc's
// database (src/tenant-store.ts: a global property on SQLite, a table of the plugin's own
// on PostgreSQL, which every node of a cluster shares): they survive restarts, and every
// node follows them (it reads them again every few seconds; only on a shared index). Tenants of the
// configuration file are not changed here.
import type { TenantChange } from './audit.js';
import type { ServerSpec, ServerState } from './bridge.js';
import { ConfigurationConflict, ConfigurationError, isSameAet, parseTenantEntry, tenantName, type TenantConfig } from './configuration.js';
import { isJsonObject } from './json.js';
import type { NativeBridge } from './native.js';
import { describeError, type Orthanc } from './orthanc.js';
import { TenantStoreError, type TenantStore } from './tenant-store.js';
import type { Tenants } from './tenants.js';

/** How often a node looks for changes made through another node. */
const FOLLOW_PERIOD_MS = 3_000;

export interface RestOutcome {
  status: number;
  body: unknown;
}

/** Who follows the tenants served (the operator's view, src/activity.ts). */
export interface TenantsListener {
  /** The servers were just applied: these tenants are served, their servers in these states. */
  serve(tenants: TenantConfig[], states: ServerState[]): void;
  /** A change made through REST on this Orthanc. */
  tenantChanged(tenant: TenantConfig, change: TenantChange): void;
}

type Native = Pick<NativeBridge, 'applyServers' | 'getConfigurationPath'>;

export class RuntimeTenants {
  /** The stored text as last applied: a node reapplies only when the store's differs. */
  private stored = '';
  private timer: NodeJS.Timeout | undefined;
  /** The states of the servers, from the last time they were applied. */
  readonly states = new Map<number, ServerState>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly tenants: Tenants,
    private readonly native: Native,
    private readonly orthanc: Orthanc,
    /** What the native shim needs to run these tenants' servers (lifecycle.ts, serverSpecs). */
    private readonly specsOf: (tenants: TenantConfig[]) => ServerSpec[],
    private readonly listener: TenantsListener,
    /** Where they live (src/tenant-store.ts). */
    private readonly store: TenantStore,
  ) {}

  /** Reads the tenants added through REST from Orthanc's database. */
  async load(): Promise<void> {
    let text = '';
    try {
      text = await this.store.read();
    } catch (error) {
      this.orthanc.error(`multitenant-dicom: cannot read the tenants added through REST: ${describeError(error)}`);
      return;
    }
    this.stored = text;
    this.tenants.setAddedThroughRest(this.parseStored(text));
  }

  /** Opens, closes and reopens the servers so that they are exactly the tenants'. */
  async apply(): Promise<ServerState[]> {
    const states = await this.native.applyServers(this.specsOf(this.tenants.all));
    this.states.clear();
    for (const state of states) this.states.set(state.index, state);
    this.listener.serve(this.tenants.all, states);
    return states;
  }

  /**
   * From now on, applies what another node changes. Not on Orthanc's built-in SQLite
   * index, which no other node opens: reading the tenants every few seconds would only
   * wake the JavaScript thread.
   */
  async follow(): Promise<void> {
    if (await this.orthanc.hasBuiltInIndex()) return;
    this.timer ??= setInterval(() => void this.serialized(() => this.followOnce()), FOLLOW_PERIOD_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  put(aet: string, body: string): Promise<RestOutcome> {
    return this.serialized(() => this.putNow(aet, body));
  }

  delete(aet: string): Promise<RestOutcome> {
    return this.serialized(() => this.deleteNow(aet));
  }

  private async putNow(aet: string, body: string): Promise<RestOutcome> {
    let entry: unknown;
    try {
      entry = JSON.parse(body);
    } catch {
      return error(400, `the body must be a server entry in JSON, as in MultitenantDicom.Servers`);
    }
    if (!isJsonObject(entry)) return error(400, 'the body must be a JSON object: a server entry, as in MultitenantDicom.Servers');
    entry = { AET: aet, ...entry };
    const entryAet = (entry as Record<string, unknown>)['AET'];
    if (typeof entryAet === 'string' && !isSameAet(this.tenants.dicom.strictAetComparison, entryAet, aet)) {
      return error(400, `the body's "AET" (${JSON.stringify(entryAet)}) is not the AET of the URI (${JSON.stringify(aet)})`);
    }
    const configured = this.tenants.fromConfiguration.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
    if (configured !== undefined) return this.definedInFile(configured);

    // Decided on the stored tenants as they are, with no change through another node in between.
    let decision!: { refusal: RestOutcome } | { tenant: TenantConfig; existing: TenantConfig | undefined; added: TenantConfig[] };
    const text = await this.changeStore((current) => {
      const added = this.parseStored(current);
      const existing = added.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
      const others = [...this.tenants.fromConfiguration, ...added].filter((tenant) => tenant !== existing);
      try {
        decision = { tenant: parseTenantEntry(entry, existing?.index ?? this.tenants.indexFor(aet), others, this.tenants.dicom), existing, added };
      } catch (problem) {
        if (problem instanceof ConfigurationConflict) decision = { refusal: error(409, problem.message) };
        else if (problem instanceof ConfigurationError) decision = { refusal: error(400, problem.message) };
        else throw problem;
        return current;
      }
      const entries = this.storedEntries(current).filter((stored) => !sameEntry(stored, aet, this.tenants.dicom.strictAetComparison));
      return JSON.stringify({ Servers: [...entries, entry] });
    });
    if (typeof text !== 'string') return text;
    if ('refusal' in decision) return decision.refusal;
    const { tenant, existing, added } = decision;
    this.stored = text;
    this.tenants.setAddedThroughRest([...added.filter((other) => other !== existing), tenant]);
    await this.apply();
    const change = existing === undefined ? 'TENANT-CREATED' : 'TENANT-CHANGED';
    this.orthanc.warning(`${tenantName(tenant)}: ${existing === undefined ? 'created' : 'changed'} through REST`);
    this.listener.tenantChanged(tenant, change);
    return { status: existing === undefined ? 201 : 200, body: this.describe(tenant) };
  }

  private async deleteNow(aet: string): Promise<RestOutcome> {
    const configured = this.tenants.fromConfiguration.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
    if (configured !== undefined) return this.definedInFile(configured);
    let decision!: { refusal: RestOutcome } | { existing: TenantConfig; added: TenantConfig[] };
    const text = await this.changeStore((current) => {
      const added = this.parseStored(current);
      const existing = added.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
      if (existing === undefined) {
        decision = { refusal: error(404, `no tenant has the AET ${JSON.stringify(aet)}`) };
        return current;
      }
      decision = { existing, added };
      return JSON.stringify({ Servers: this.storedEntries(current).filter((stored) => !sameEntry(stored, aet, this.tenants.dicom.strictAetComparison)) });
    });
    if (typeof text !== 'string') return text;
    if ('refusal' in decision) return decision.refusal;
    const { existing, added } = decision;
    this.stored = text;
    this.tenants.setAddedThroughRest(added.filter((tenant) => tenant !== existing));
    await this.apply();
    this.orthanc.warning(`${tenantName(existing)}: deleted through REST (its port is closed, its data stays)`);
    this.listener.tenantChanged(existing, 'TENANT-DELETED');
    return { status: 200, body: { Deleted: existing.aet } };
  }

  /** The store's update; a store that cannot be reached is a 503 that says why (and an error in the log). */
  private async changeStore(change: (current: string) => string): Promise<string | RestOutcome> {
    try {
      return await this.store.update(change);
    } catch (problem) {
      if (!(problem instanceof TenantStoreError)) throw problem;
      this.orthanc.error(`multitenant-dicom: ${problem.message}`);
      return error(503, problem.message);
    }
  }

  private async followOnce(): Promise<void> {
    let text: string;
    try {
      text = await this.store.read();
    } catch {
      return; // said when it happens at start-up; a passing failure of the database is retried
    }
    if (text === this.stored) return;
    this.stored = text;
    this.tenants.setAddedThroughRest(this.parseStored(text));
    await this.apply();
    this.orthanc.info('multitenant-dicom: the tenants added through REST changed on another node: applied');
  }

  private definedInFile(tenant: TenantConfig): RestOutcome {
    const file = this.native.getConfigurationPath() ?? "Orthanc's configuration";
    return error(409, `${tenantName(tenant)} is defined in ${file}: change it there (and restart Orthanc), not through REST`);
  }

  /** The entries of a stored text: {"Servers": [entries as PUT]}. */
  private storedEntries(text: string): unknown[] {
    if (text === '') return [];
    const parsed: unknown = JSON.parse(text);
    return isJsonObject(parsed) && Array.isArray(parsed['Servers']) ? parsed['Servers'] : [];
  }

  /** The entries of a stored text that are still valid; an invalid one is logged and left out. */
  private parseStored(text: string): TenantConfig[] {
    const tenants: TenantConfig[] = [];
    let entries: unknown[];
    try {
      entries = this.storedEntries(text);
    } catch (problem) {
      this.orthanc.error(`multitenant-dicom: the tenants added through REST cannot be read (${describeError(problem)}); none is served`);
      return [];
    }
    for (const entry of entries) {
      const aet = isJsonObject(entry) && typeof entry['AET'] === 'string' ? entry['AET'] : '';
      try {
        tenants.push(parseTenantEntry(entry, this.tenants.indexFor(aet), [...this.tenants.fromConfiguration, ...tenants], this.tenants.dicom));
      } catch (problem) {
        this.orthanc.error(`multitenant-dicom: a tenant added through REST is not served: ${describeError(problem)}`);
      }
    }
    return tenants;
  }

  private describe(tenant: TenantConfig): Record<string, unknown> {
    const state = this.states.get(tenant.index);
    return {
      AET: tenant.aet,
      Port: tenant.port,
      Labels: tenant.labels,
      LabelsConstraint: tenant.labelsConstraint,
      LabelsStoreLevels: tenant.labelsStoreLevels,
      State: state?.state ?? 'Stopped',
      ...(state?.error !== undefined && { Error: state.error }),
    };
  }

  // Changes run one after the other: each reads, writes and applies the whole set.
  private serialized<T>(step: () => Promise<T>): Promise<T> {
    const result = this.queue.then(step, step);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function sameEntry(entry: unknown, aet: string, strict: boolean): boolean {
  return isJsonObject(entry) && typeof entry['AET'] === 'string' && isSameAet(strict, entry['AET'], aet);
}

function error(status: number, message: string): RestOutcome {
  return { status, body: { error: message } };
}
