// Which instances are a tenant's. An instance is entitled to a tenant when the labels
// at the tenant's entitlement level satisfy its constraint: the instance's own labels
// when Instance is one of its LabelsStoreLevels (the default), else those of its
// ancestor at the lowest of its LabelsStoreLevels.
import type { LabelsConstraint, TenantConfig } from './configuration.js';
import { LEVELS, type ResourceLevel } from './dicom.js';

export function entitledLevel(tenant: Pick<TenantConfig, 'labelsStoreLevels'>): ResourceLevel {
  return [...LEVELS].reverse().find((level) => tenant.labelsStoreLevels.includes(level)) ?? 'Instance';
}

/** Orthanc's meaning of Labels and LabelsConstraint (as in /tools/find). */
export function satisfies(
  tenant: { labels: string[]; labelsConstraint: LabelsConstraint },
  resourceLabels: readonly string[],
): boolean {
  const carried = tenant.labels.filter((label) => resourceLabels.includes(label)).length;
  switch (tenant.labelsConstraint) {
    case 'All':
      return carried === tenant.labels.length;
    case 'Any':
      return carried > 0;
    case 'None':
      return carried === 0;
  }
}

/**
 * The constraints whose union is "not entitled": None for Any, Any for None, and for
 * All one None per label (an instance lacking any one label is not the tenant's).
 */
export function negatedConstraints(tenant: {
  labels: string[];
  labelsConstraint: LabelsConstraint;
}): { Labels: string[]; LabelsConstraint: LabelsConstraint }[] {
  switch (tenant.labelsConstraint) {
    case 'Any':
      return [{ Labels: tenant.labels, LabelsConstraint: 'None' }];
    case 'None':
      return [{ Labels: tenant.labels, LabelsConstraint: 'Any' }];
    case 'All':
      return tenant.labels.map((label) => ({ Labels: [label], LabelsConstraint: 'None' }));
  }
}

/** A startup warning for a tenant whose isolation is coarser than the instance. */
export function coarseIsolationWarning(tenant: Pick<TenantConfig, 'labelsStoreLevels'>, name: string): string | undefined {
  if (tenant.labelsStoreLevels.includes('Instance')) return undefined;
  const level = entitledLevel(tenant);
  return (
    `${name}: "LabelsStoreLevels" lacks "Instance", so this tenant's isolation is only as fine as the ${level.toLowerCase()}: ` +
    `every instance of a ${level.toLowerCase()} it labelled is visible and retrievable through it, whoever sent it`
  );
}
