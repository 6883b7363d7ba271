// C-STORE through a tenant. The native shim (native/store_handler.cpp) does the
// mechanics: it POSTs the instance as received, adds the labels of the plan below that
// the resources lack, and if anything fails, removes exactly what the store added (the
// instance if it created it, the labels it added) and answers a failure. A store ends
// labelled, or fails. TypeScript decides: the plan, per tenant, at start-up; and what to
// do with an instance Orthanc already holds (storeHeld).
import type { Answers, Requests, StorePlan } from './bridge.js';
import type { TenantConfig } from './configuration.js';
import { LEVELS, type ResourceLevel } from './dicom.js';
import { entitledLevel, satisfies } from './entitlement.js';
import type { Handler } from './handler.js';
import { tenantName } from './configuration.js';

export const DicomStatus = {
  Success: 0x0000,
  RefusedNotAuthorized: 0x0124,
  RefusedOutOfResources: 0xa700,
  CannotUnderstand: 0xc000,
} as const;

/** A label Orthanc refuses (labels are [A-Za-z0-9_-]): a real failure, for fault injection. */
export const REFUSED_LABEL = 'fault!injected';

/**
 * The labels a store adds: every label of the tenant at every LabelsStoreLevel, the
 * deepest level first (a failure then leaves the fewest labels to remove). With
 * OverwriteInstances, a POST would replace an instance Orthanc holds: the shim asks first.
 */
export function storePlan(
  tenant: Pick<TenantConfig, 'labels' | 'labelsStoreLevels'>,
  options: { overwriteInstances: boolean; failingLabelWrite?: number | 'last' },
): StorePlan {
  const deepestFirst = [...LEVELS].reverse().filter((level) => tenant.labelsStoreLevels.includes(level));
  const labelWrites = deepestFirst.flatMap((level) => tenant.labels.map((label) => ({ level, label })));
  const failing = options.failingLabelWrite === 'last' ? labelWrites.length : options.failingLabelWrite;
  if (failing !== undefined && failing <= labelWrites.length) {
    labelWrites[failing - 1] = { level: labelWrites[failing - 1]!.level, label: REFUSED_LABEL };
  }
  return {
    askBeforePost: options.overwriteInstances,
    labelWrites,
    statuses: {
      // Orthanc's own port answers Success for an instance a filter drops, for compatibility.
      filteredOut: DicomStatus.Success,
      badFileFormat: DicomStatus.CannotUnderstand,
      failure: DicomStatus.RefusedOutOfResources,
      refused: DicomStatus.RefusedNotAuthorized,
    },
  };
}

/**
 * Whether an instance Orthanc holds is the tenant's, from the labels of its store levels
 * (see entitlement.ts). Never for a "None" tenant: what it stores carries its labels, so
 * an instance it would see came through another tenant or Orthanc's own port.
 */
export function isEntitledHeldInstance(
  tenant: Pick<TenantConfig, 'labels' | 'labelsConstraint' | 'labelsStoreLevels'>,
  labels: Partial<Record<ResourceLevel, string[] | null>>,
): boolean {
  if (tenant.labelsConstraint === 'None') return false;
  return satisfies(tenant, labels[entitledLevel(tenant)] ?? []);
}

/**
 * Orthanc already holds the instance a C-STORE brings: the tenant's own is stored again
 * (replaced, when asked before the POST with OverwriteInstances) and labelled; another
 * sender's is refused ("ForeignInstances": "Reject") or labelled for this tenant too,
 * never replaced ("Share").
 */
export function decideHeldInstance(
  tenant: TenantConfig,
  held: Pick<Requests['storeHeld'], 'labels' | 'beforePost'>,
): Answers['storeHeld']['decision'] {
  if (isEntitledHeldInstance(tenant, held.labels)) return held.beforePost ? 'store' : 'label';
  return tenant.foreignInstances === 'Share' ? 'label' : 'refuse';
}

export const storeHeld: Handler<'storeHeld'> = (args, { tenants, orthanc, mixing }) => {
  const tenant = tenants.byIndex(args.tenant);
  const decision = decideHeldInstance(tenant, args);
  if (decision === 'refuse') {
    orthanc.warning(
      `${tenantName(tenant)}: refused the instance ${args.ids.Instance} sent by ${args.remoteAet}: Orthanc already holds it, ` +
        `and it is not this tenant's ("ForeignInstances" is "Reject")`,
    );
  } else if (!isEntitledHeldInstance(tenant, args.labels)) {
    // Shared: the patient now holds an instance of several senders.
    mixing.noticePatient(args.ids.Patient);
  }
  return { decision };
};
