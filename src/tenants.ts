// The tenants the plugin serves: those of Orthanc's configuration (MultitenantDicom.Servers)
// and those added through REST (src/runtime-tenants.ts), and how each is named in log lines.
import { isSameAet, type PluginConfiguration, type TenantConfig } from './configuration.js';

export { tenantName } from './configuration.js';

export class Tenants {
  private configuration: PluginConfiguration | undefined;
  private runtime: TenantConfig[] = [];
  /** A tenant added through REST keeps its index while this process runs, even if changed. */
  private readonly runtimeIndices = new Map<string, number>();

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

  /** Those of the configuration, in its order, then those added through REST, in the order they came. */
  get all(): TenantConfig[] {
    return [...this.current.servers, ...this.runtime];
  }

  get fromConfiguration(): TenantConfig[] {
    return this.current.servers;
  }

  get addedThroughRest(): TenantConfig[] {
    return this.runtime;
  }

  setAddedThroughRest(tenants: TenantConfig[]): void {
    this.runtime = tenants;
  }

  /** The index a tenant added through REST has, or gets. */
  indexFor(aet: string): number {
    let index = this.runtimeIndices.get(aet);
    if (index === undefined) {
      index = this.current.servers.length + this.runtimeIndices.size;
      this.runtimeIndices.set(aet, index);
    }
    return index;
  }

  byIndex(index: number): TenantConfig {
    const found = this.all.find((server) => server.index === index);
    if (found === undefined) throw new Error(`no tenant server has index ${index}`);
    return found;
  }

  byAet(aet: string): TenantConfig | undefined {
    return this.all.find((server) => isSameAet(this.dicom.strictAetComparison, server.aet, aet));
  }
}
