// The tenants the plugin serves: the configuration read at initialisation, and how
// each tenant is named in log lines.
import type { PluginConfiguration, TenantConfig } from './configuration.js';

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
