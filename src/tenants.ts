// The tenants: what the plugin answers when Orthanc's threads ask (see the kinds
// that native/plugin_entry.cpp and native/dicom_servers.cpp send). Each handler
// gets the tenant's index in MultitenantDicom.Servers.
import { acceptedSopClasses } from './acceptance.js';
import { decideAllowedCaller, decideConnection, decideRequest, parseModalities, type DicomRequestType } from './access.js';
import {
  ConfigurationError,
  isSameAet,
  parseConfiguration,
  type PluginConfiguration,
  type TenantConfig,
} from './configuration.js';
import { findThroughTenant, type QueryElement } from './find.js';
import { planRetrieve, type RetrieveRequest } from './move.js';
import { coarseIsolationWarning } from './entitlement.js';
import type { Dispatcher } from './native.js';
import type { Orthanc } from './orthanc.js';
import {
  labellingFailed,
  PerInstanceQueue,
  storePlan,
  storeThroughTenant,
  type LabelWrite,
  type OrthancIds,
  type PostOutcome,
  type StorePlan,
} from './store.js';

export interface ServerSpec {
  index: number;
  name: string;
  aet: string;
  port: number;
  checkCalledAet: boolean;
  associationTimeoutSeconds: number;
  threadsCount: number;
  maximumPduLength: number;
  store: StorePlan;
}

export interface InitializationAnswer {
  error?: string;
  locale?: string;
  defaultEncoding?: string;
  servers?: ServerSpec[];
  acceptedSopClasses?: string[];
}

const MODALITIES_URI = '/modalities?expand';

/**
 * An answer the native shim may reuse for the same question while GET `uri` reads
 * exactly `content` (native/remembered_answers.h): it then skips the call into JS.
 */
export interface Remembered<T> {
  answer: T;
  whileUnchanged: { uri: string; content: string };
}

function rememberWhileUnchanged<T>(answer: T, uri: string, content: string): Remembered<T> {
  return { answer, whileUnchanged: { uri, content } };
}

interface CallerArguments {
  tenant: number;
  remoteIp: string;
  remoteAet: string;
  calledAet: string;
}

/** How a tenant is named in every log line: the configuration path and its AET. */
export function tenantName(tenant: Pick<TenantConfig, 'index' | 'aet'>): string {
  return `MultitenantDicom.Servers[${tenant.index}] (AET "${tenant.aet}")`;
}

export function serverSpecs(configuration: PluginConfiguration, faults: ReadonlySet<string> = new Set()): ServerSpec[] {
  const { dicom } = configuration;
  return configuration.servers.map((tenant) => ({
    index: tenant.index,
    name: tenantName(tenant),
    aet: tenant.aet,
    port: tenant.port,
    checkCalledAet: dicom.checkCalledAet,
    associationTimeoutSeconds: dicom.scpTimeoutSeconds,
    threadsCount: dicom.threadsCount,
    maximumPduLength: dicom.maximumPduLength,
    store: storePlan(tenant, {
      overwriteInstances: dicom.overwriteInstances,
      failParentLabelWrites: faults.has('labelWrite'),
    }),
  }));
}

export function createDispatcher(orthanc: Orthanc): Dispatcher {
  let configuration: PluginConfiguration | undefined;
  const faults = injectedFaults();
  const storeQueue = new PerInstanceQueue();

  function current(): PluginConfiguration {
    if (configuration === undefined) throw new Error('the plugin is not initialised');
    return configuration;
  }

  function tenant(index: unknown): TenantConfig {
    const found = current().servers.find((server) => server.index === index);
    if (found === undefined) throw new Error(`no tenant server has index ${String(index)}`);
    return found;
  }

  async function modalities() {
    const text = await orthanc.getText(MODALITIES_URI);
    return { known: parseModalities(JSON.parse(text)), text };
  }

  // Orthanc's own setting, read as it is now (it may change at run time through REST).
  async function orthancSetting<T>(uri: string): Promise<Remembered<T>> {
    const text = await orthanc.getText(uri);
    return rememberWhileUnchanged(JSON.parse(text) as T, uri, text);
  }

  function storeContext() {
    return {
      orthanc,
      queue: storeQueue,
      overwriteInstances: current().dicom.overwriteInstances,
      beforeLabelWrite: faults.has('labelWrite') ? failLabelWrite : undefined,
    };
  }

  function callerOf(args: CallerArguments) {
    return { aet: args.remoteAet, ip: args.remoteIp, calledAet: args.calledAet };
  }

  const handlers: Record<string, (args: never) => unknown> = {
    initialize(args: { dcmtkStorageSopClasses: string[]; orthancVersion: string }): InitializationAnswer {
      const orthancConfiguration = orthanc.configuration();
      try {
        configuration = parseConfiguration(orthancConfiguration);
      } catch (error) {
        if (error instanceof ConfigurationError) return { error: error.message };
        throw error;
      }
      for (const warning of configuration.warnings) orthanc.warning(warning);
      orthanc.setFindLimits(configuration.dicom.limitFindResults, configuration.dicom.limitFindInstances);
      for (const server of configuration.servers) {
        const warning = coarseIsolationWarning(server, tenantName(server));
        if (warning !== undefined) orthanc.warning(warning);
      }
      if (configuration.servers.length === 0) {
        orthanc.warning(
          configuration.sectionPresent
            ? 'MultitenantDicom: "Servers" is empty, no multitenant DICOM server is started'
            : 'MultitenantDicom: the configuration has no "MultitenantDicom" section, no multitenant DICOM server is started',
        );
      }
      scheduleProcessFaults(faults, orthanc);
      return {
        locale: stringOption(orthancConfiguration, 'Locale'),
        defaultEncoding: stringOption(orthancConfiguration, 'DefaultEncoding'),
        servers: serverSpecs(configuration, faults),
        acceptedSopClasses: acceptedSopClasses(orthancConfiguration, args.dcmtkStorageSopClasses, args.orthancVersion),
      };
    },

    async started(): Promise<boolean> {
      const names = await orthanc.getJson<string[]>('/modalities');
      for (const warning of unknownModalityWarnings(current().servers, new Set(names))) orthanc.warning(warning);
      return true;
    },

    // Asked for every association, then before every DICOM command. A permission depends
    // only on the configuration and DicomModalities: it holds while those are unchanged.
    // A refusal is asked again every time (and logged).
    async allowConnection(args: CallerArguments): Promise<Remembered<true> | false> {
      const server = tenant(args.tenant);
      const { known, text } = await modalities();
      const listed = decideAllowedCaller(current().dicom, known, callerOf(args), server.allowedCallers);
      const decision = listed.allowed ? decideConnection(current().dicom, known, callerOf(args)) : listed;
      if (!decision.allowed) {
        orthanc.warning(`${tenantName(server)}: ${decision.reason ?? 'connection refused'}`);
        return false;
      }
      return rememberWhileUnchanged(true, MODALITIES_URI, text);
    },

    async allowRequest(args: CallerArguments & { request: DicomRequestType }): Promise<Remembered<true> | false> {
      const server = tenant(args.tenant);
      const { known, text } = await modalities();
      const listed = decideAllowedCaller(current().dicom, known, callerOf(args), server.allowedCallers);
      const decision = listed.allowed ? decideRequest(current().dicom, known, callerOf(args), args.request) : listed;
      if (!decision.allowed) {
        orthanc.warning(`${tenantName(server)}: ${decision.reason ?? 'request refused'}`);
        return false;
      }
      return rememberWhileUnchanged(true, MODALITIES_URI, text);
    },

    sameAet(args: { first: string; second: string }): boolean {
      return isSameAet(current().dicom.strictAetComparison, args.first, args.second);
    },

    async lookupModality(args: { aet: string }): Promise<string | null> {
      const expanded = await orthanc.getJson<Record<string, { AET?: string }>>('/modalities?expand');
      for (const name of Object.keys(expanded).sort()) {
        const modality = expanded[name];
        if (modality?.AET !== undefined && isSameAet(current().dicom.strictAetComparison, modality.AET, args.aet)) {
          return JSON.stringify(modality);
        }
      }
      return null;
    },

    acceptedTransferSyntaxes(): Promise<Remembered<string[]>> {
      return orthancSetting('/tools/accepted-transfer-syntaxes');
    },

    // Used by the framework only when this server acts as a C-GET SCU toward a caller.
    proposedStorageTransferSyntaxes(): Promise<Remembered<string[]>> {
      return orthancSetting('/tools/accepted-transfer-syntaxes');
    },

    // C-STORE, when the native shim's plan (storePlan) cannot finish it alone.
    async store(args: CallerArguments & { dicom: Buffer; ids: OrthancIds }): Promise<number> {
      const server = tenant(args.tenant);
      return storeThroughTenant(storeContext(), server, tenantName(server), {
        ids: args.ids,
        dicom: args.dicom,
        callerAet: args.remoteAet,
      });
    },

    async storePosted(args: CallerArguments & PostOutcome & { ids: OrthancIds }): Promise<number> {
      const server = tenant(args.tenant);
      const posted: PostOutcome = 'failure' in args ? { failure: args.failure } : { answer: args.answer };
      return storeThroughTenant(storeContext(), server, tenantName(server), { ids: args.ids, posted, callerAet: args.remoteAet });
    },

    async storeLabellingFailed(args: CallerArguments & { ids: OrthancIds; error: string }): Promise<number> {
      const server = tenant(args.tenant);
      return labellingFailed({ orthanc }, tenantName(server), { ids: args.ids, callerAet: args.remoteAet }, args.error);
    },

    async find(args: CallerArguments & { query: QueryElement[] }) {
      return findThroughTenant(orthanc, tenant(args.tenant), current().dicom, args.query);
    },

    async retrieve(args: CallerArguments & Omit<RetrieveRequest, 'callerAet'>) {
      return planRetrieve(orthanc, tenant(args.tenant), current().dicom, { ...args, callerAet: args.remoteAet });
    },

    async unknownSopClassAccepted(): Promise<Remembered<boolean>> {
      const setting = await orthancSetting<unknown>('/tools/unknown-sop-class-accepted');
      const accepted = setting.answer;
      return { ...setting, answer: accepted === true || accepted === 1 || accepted === '1' || accepted === 'true' };
    },
  };

  return (kind, args) => {
    const handler = handlers[kind];
    if (handler === undefined) throw new Error(`multitenant-dicom: unknown request "${kind}" from the native shim`);
    if (faults.has(kind)) throw new Error(`fault injected into "${kind}" (MTD_FAULT_INJECTION)`);
    return handler(args as never);
  };
}

// MTD_FAULT_INJECTION=labelWrite: the label write after the instance's fails.
function failLabelWrite(write: LabelWrite): void {
  if (write.level !== 'Instance') {
    throw new Error(`fault injected into the ${write.level} label write (MTD_FAULT_INJECTION)`);
  }
}

/** Modality names of AllowedCallers or AllowedMoveDestinations that Orthanc does not know (yet). */
export function unknownModalityWarnings(servers: TenantConfig[], knownNames: Set<string>): string[] {
  const warnings: string[] = [];
  for (const server of servers) {
    for (const key of ['AllowedCallers', 'AllowedMoveDestinations'] as const) {
      const names = key === 'AllowedCallers' ? server.allowedCallers : server.allowedMoveDestinations;
      for (const name of names ?? []) {
        if (!knownNames.has(name)) {
          warnings.push(
            `${tenantName(server)}: "${key}" names the modality "${name}", which is not in DicomModalities (yet); ` +
              'it matches nothing until it is added',
          );
        }
      }
    }
  }
  return warnings;
}

function stringOption(configuration: Record<string, unknown>, key: string): string | undefined {
  const value = configuration[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * MTD_FAULT_INJECTION, a comma-separated list, lets the integration tests prove that
 * a failing handler refuses its request and that Orthanc survives JS errors: a
 * handler kind (e.g. "allowRequest") throws; "labelWrite" fails a store after its
 * instance is labelled; "uncaughtException" and "processExit" happen once, right
 * after initialisation.
 */
function injectedFaults(): Set<string> {
  const value = process.env['MTD_FAULT_INJECTION'] ?? '';
  return new Set(value.split(',').map((item) => item.trim()).filter((item) => item !== ''));
}

function scheduleProcessFaults(faults: Set<string>, orthanc: Orthanc): void {
  if (faults.has('uncaughtException')) {
    setTimeout(() => {
      throw new Error('fault injected: uncaught exception (MTD_FAULT_INJECTION)');
    }, 10);
  }
  if (faults.has('processExit')) {
    setTimeout(() => {
      orthanc.warning('fault injected: process.exit(3) (MTD_FAULT_INJECTION)');
      process.exit(3);
    }, 10);
  }
}
