// A tenant's configuration as parseConfiguration would give it, for unit tests that
// build tenants by hand: AET TENANT_<index>, port 4243 + index, the default store levels.
import type { TenantConfig } from '../../src/configuration.js';

export const tenantConfig = (index: number, labels: string[], overrides: Partial<TenantConfig> = {}): TenantConfig => ({
  index,
  aet: `TENANT_${index}`,
  port: 4243 + index,
  labels,
  labelsConstraint: 'All',
  labelsStoreLevels: ['Study', 'Series', 'Instance'],
  foreignInstances: 'Reject',
  ...overrides,
});
