// Tenants added, changed and removed at run time (PUT and DELETE
// /plugins/multitenant-dicom/tenants/{AET}), without a restart. They live in Orthanc's
// database, as one global property: they survive restarts, and every node of a cluster
// follows them (it reads the property again every few seconds). Tenants of the
// configuration file are not changed here.
import type { TenantChange } from './audit.js';
import type { ServerSpec, ServerState } from './bridge.js';
import { ConfigurationConflict, ConfigurationError, isSameAet, parseTenantEntry, tenantName, type TenantConfig } from './configuration.js';
import { isJsonObject } from './json.js';
import type { NativeBridge } from './native.js';
import { describeError, type Orthanc } from './orthanc.js';
import type { Tenants } from './tenants.js';

/** The global property holding them: {"Servers": [entries as PUT]} (plugins use numbers from 1024). */
export const TENANTS_PROPERTY = 20_260;

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

type Native = Pick<NativeBridge, 'applyServers' | 'getGlobalProperty' | 'setGlobalProperty' | 'getConfigurationPath'>;

export class RuntimeTenants {
  /** The property as last read or written: a node reapplies only when it differs. */
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
  ) {}

  /** Reads the tenants added through REST from Orthanc's database. */
  async load(): Promise<void> {
    let text = '';
    try {
      text = await this.native.getGlobalProperty(TENANTS_PROPERTY);
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

  /** From now on, applies what another node changes. */
  follow(): void {
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

    await this.load(); // another node may have changed them meanwhile
    const existing = this.tenants.addedThroughRest.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
    const others = this.tenants.all.filter((tenant) => tenant !== existing);
    let tenant: TenantConfig;
    try {
      tenant = parseTenantEntry(entry, existing?.index ?? this.tenants.indexFor(aet), others, this.tenants.dicom);
    } catch (problem) {
      if (problem instanceof ConfigurationConflict) return error(409, problem.message);
      if (problem instanceof ConfigurationError) return error(400, problem.message);
      throw problem;
    }
    const entries = this.storedEntries().filter((stored) => !sameEntry(stored, aet, this.tenants.dicom.strictAetComparison));
    entries.push(entry);
    await this.save(entries);
    this.tenants.setAddedThroughRest([...this.tenants.addedThroughRest.filter((other) => other !== existing), tenant]);
    await this.apply();
    const change = existing === undefined ? 'TENANT-CREATED' : 'TENANT-CHANGED';
    this.orthanc.warning(`${tenantName(tenant)}: ${existing === undefined ? 'created' : 'changed'} through REST`);
    this.listener.tenantChanged(tenant, change);
    return { status: existing === undefined ? 201 : 200, body: this.describe(tenant) };
  }

  private async deleteNow(aet: string): Promise<RestOutcome> {
    const configured = this.tenants.fromConfiguration.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
    if (configured !== undefined) return this.definedInFile(configured);
    await this.load();
    const existing = this.tenants.addedThroughRest.find((tenant) => isSameAet(this.tenants.dicom.strictAetComparison, tenant.aet, aet));
    if (existing === undefined) return error(404, `no tenant has the AET ${JSON.stringify(aet)}`);
    await this.save(this.storedEntries().filter((stored) => !sameEntry(stored, aet, this.tenants.dicom.strictAetComparison)));
    this.tenants.setAddedThroughRest(this.tenants.addedThroughRest.filter((tenant) => tenant !== existing));
    await this.apply();
    this.orthanc.warning(`${tenantName(existing)}: deleted through REST (its port is closed, its data stays)`);
    this.listener.tenantChanged(existing, 'TENANT-DELETED');
    return { status: 200, body: { Deleted: existing.aet } };
  }

  private async followOnce(): Promise<void> {
    let text: string;
    try {
      text = await this.native.getGlobalProperty(TENANTS_PROPERTY);
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

  private storedEntries(): unknown[] {
    if (this.stored === '') return [];
    const parsed: unknown = JSON.parse(this.stored);
    return isJsonObject(parsed) && Array.isArray(parsed['Servers']) ? parsed['Servers'] : [];
  }

  private async save(entries: unknown[]): Promise<void> {
    const text = JSON.stringify({ Servers: entries });
    await this.native.setGlobalProperty(TENANTS_PROPERTY, text);
    this.stored = text;
  }

  /** The entries of the property that are still valid; an invalid one is logged and left out. */
  private parseStored(text: string): TenantConfig[] {
    this.stored = text;
    const tenants: TenantConfig[] = [];
    let entries: unknown[];
    try {
      entries = this.storedEntries();
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
