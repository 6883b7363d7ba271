// The plugin's start: the configuration is read and checked, and the tenant servers
// described to the native shim ("initialize", before Orthanc serves anything); then,
// once Orthanc's REST API answers, what needs it ("started").
import { acceptedSopClasses } from './acceptance.js';
import { ConfigurationError, parseConfiguration } from './configuration.js';
import { coarseIsolationWarning } from './entitlement.js';
import { scheduleProcessFaults } from './faults.js';
import type { Handler } from './handler.js';
import { CHANGES_OF_INTEREST } from './mixing.js';
import { serverSpecs, tenantName, unknownModalityWarnings } from './tenants.js';

export const initialize: Handler<'initialize'> = (args, { orthanc, tenants, faults }) => {
  const orthancConfiguration = orthanc.configuration();
  let configuration;
  try {
    configuration = parseConfiguration(orthancConfiguration);
  } catch (error) {
    if (error instanceof ConfigurationError) return { error: error.message };
    throw error;
  }
  tenants.configure(configuration);
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
  scheduleProcessFaults(faults, (message) => orthanc.warning(message));
  return {
    locale: stringOption(orthancConfiguration, 'Locale'),
    defaultEncoding: stringOption(orthancConfiguration, 'DefaultEncoding'),
    servers: serverSpecs(configuration, faults.labelWrite),
    acceptedSopClasses: acceptedSopClasses(orthancConfiguration, args.dcmtkStorageSopClasses, args.orthancVersion),
    changes: configuration.servers.length > 0 ? [...CHANGES_OF_INTEREST] : [],
  };
};

export const started: Handler<'started'> = async (_args, { orthanc, tenants, mixing }) => {
  const names = await orthanc.getJson<string[]>('/modalities');
  for (const warning of unknownModalityWarnings(tenants.all, new Set(names))) orthanc.warning(warning);
  if (tenants.all.length > 0) mixing.start();
  return true as const;
};

function stringOption(configuration: Record<string, unknown>, key: string): string | undefined {
  const value = configuration[key];
  return typeof value === 'string' ? value : undefined;
}

/** Changes of Orthanc's store (see CHANGES_OF_INTEREST): a notification, nobody waits for an answer. */
export const changes: Handler<'changes'> = (args, { mixing }) => {
  mixing.notice(args.events);
  return undefined;
};
