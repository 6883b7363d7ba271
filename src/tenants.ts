// The tenants the plugin serves: the configuration read at initialisation, how each
// tenant is named in log lines, and what the native shim needs to run its server.
import type { ServerSpec } from './bridge.js';
import { tenantName, type PluginConfiguration, type TenantConfig } from './configuration.js';
import { storePlan } from './store.js';

export { tenantName } from './configuration.js';

export class Tenants {
  private configuration: PluginConfiguration | undefined;

  configure(configuration: PluginConfiguration): void {
    this.configuration = configuration;
  }

  get current(): PluginConfiguration {
    if (this.configuration === undefined) throw new Error('the plugin is not initialised');
    return this.configuration;
  }

  get dicom(): PluginConfiguration['dicom'] {
    return this.current.dicom;
  }

  get all(): TenantConfig[] {
    return this.current.servers;
  }

  byIndex(index: number): TenantConfig {
    const found = this.current.servers.find((server) => server.index === index);
    if (found === undefined) throw new Error(`no tenant server has index ${index}`);
    return found;
  }
}

export function serverSpecs(configuration: PluginConfiguration, failingLabelWrite?: number | 'last'): ServerSpec[] {
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
