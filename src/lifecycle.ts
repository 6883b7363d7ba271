// The plugin's start: the configuration is read and checked, and the tenant servers
// described to the native shim ("initialize", before Orthanc serves anything); then,
// once Orthanc's REST API answers, what needs it ("started").
import { acceptedSopClasses } from './acceptance.js';
import { METRICS_DISABLED } from './activity.js';
import type { ServerSpec } from './bridge.js';
import { ConfigurationError, parseConfiguration, tenantName, type DicomOptions, type TenantConfig } from './configuration.js';
import { coarseIsolationWarning } from './entitlement.js';
import { scheduleProcessFaults } from './faults.js';
import type { Handler } from './handler.js';
import { CHANGES_OF_INTEREST } from './mixing.js';
import { storePlan } from './store.js';
import { EXPLORER_EXTENSION } from './ui/explorer.js';

export const NO_AUDIT_LOG_WARNING =
  'MultitenantDicom: no "AuditLog" in the configuration, the DICOM operations through the tenants are not audited';

export const initialize: Handler<'initialize'> = (args, { orthanc, tenants, faults, activity }) => {
  const orthancConfiguration = orthanc.configuration();
  let configuration;
  try {
    configuration = parseConfiguration(orthancConfiguration);
  } catch (error) {
    if (error instanceof ConfigurationError) return { error: error.message };
    throw error;
  }
  tenants.configure(configuration);
  activity.configure(configuration.servers, configuration, orthanc);
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
  if (configuration.sectionPresent && configuration.auditLog === undefined) {
    orthanc.warning(NO_AUDIT_LOG_WARNING);
  } else if (configuration.auditLog !== undefined) {
    orthanc.info(`MultitenantDicom: the audit trail of the tenants is appended to ${configuration.auditLog.path}`);
  }
  if (!configuration.metricsEnabled) orthanc.info(METRICS_DISABLED);
  scheduleProcessFaults(faults, (message) => orthanc.warning(message));
  return {
    locale: stringOption(orthancConfiguration, 'Locale'),
    defaultEncoding: stringOption(orthancConfiguration, 'DefaultEncoding'),
    acceptedSopClasses: acceptedSopClasses(orthancConfiguration, args.dcmtkStorageSopClasses, args.orthancVersion),
    outgoingTls: { minimumVersion: configuration.dicom.tls.minimumVersion, ciphers: configuration.dicom.tls.ciphers },
    changes: [...CHANGES_OF_INTEREST],
    explorerExtension: EXPLORER_EXTENSION,
  };
};

// The tenants' servers open now: those of the configuration, and those added through REST
// (read from Orthanc's database, which answers from now on).
export const started: Handler<'started'> = async (_args, { orthanc, tenants, mixing, runtimeTenants }) => {
  await runtimeTenants.load();
  await runtimeTenants.apply();
  await runtimeTenants.follow();
  const names = await orthanc.getJson<string[]>('/modalities');
  for (const warning of unknownModalityWarnings(tenants.all, new Set(names))) orthanc.warning(warning);
  mixing.start();
  return true as const;
};

/** What the native shim needs to run each tenant's server. */
export function serverSpecs(servers: TenantConfig[], dicom: DicomOptions, failingLabelWrite?: number | 'last'): ServerSpec[] {
  return servers.map((tenant) => ({
    index: tenant.index,
    name: tenantName(tenant),
    aet: tenant.aet,
    port: tenant.port,
    checkCalledAet: dicom.checkCalledAet,
    associationTimeoutSeconds: dicom.scpTimeoutSeconds,
    threadsCount: dicom.threadsCount,
    maximumPduLength: dicom.maximumPduLength,
    ...(tenant.tls && { tls: tenant.tls }),
    ...(tenant.outgoingTls && { outgoingTls: tenant.outgoingTls }),
    store: storePlan(tenant, { overwriteInstances: dicom.overwriteInstances, failingLabelWrite }),
  }));
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

/** Changes of Orthanc's store (see CHANGES_OF_INTEREST): a notification, nobody waits for an answer. */
export const changes: Handler<'changes'> = (args, { mixing }) => {
  mixing.notice(args.events);
  return undefined;
};

/** What happened on the tenants' servers (activity.ts): a notification, nobody waits for an answer. */
export const events: Handler<'events'> = (args, { activity, mixing }) => {
  activity.record(args.events);
  for (const event of args.events) {
    if (event.type === 'operation' && event.createdInPatient !== undefined) mixing.noticeTenantStore(event.createdInPatient, event.labelPlan ?? '');
  }
  return undefined;
};
