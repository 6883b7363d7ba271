// C-STORE through a tenant: store the instance as received, then label it at the
// tenant's LabelsStoreLevels. A store ends labelled, or fails and leaves nothing new.
import type { ResourceLevel, TenantConfig } from './configuration.js';
import { OrthancErrorCode, orthancErrorCode, type Orthanc } from './orthanc.js';

export const DicomStatus = {
  Success: 0x0000,
  RefusedNotAuthorized: 0x0124,
  ProcessingFailure: 0x0110,
  RefusedOutOfResources: 0xa700,
  CannotUnderstand: 0xc000,
} as const;

/** The answer of POST /instances. */
export interface StoredInstance {
  ID: string;
  ParentPatient: string;
  ParentStudy: string;
  ParentSeries: string;
  Status: 'Success' | 'AlreadyStored' | 'FilteredOut' | string;
}

const URI_PREFIX: Record<ResourceLevel, string> = {
  Patient: '/patients/',
  Study: '/studies/',
  Series: '/series/',
  Instance: '/instances/',
};

/**
 * The labels this process knows it has set on patients, studies and series, so that
 * the instances of a long series cost one label write each, not one per level.
 * A deleted resource is forgotten (Orthanc's "Deleted" change), since the same UIDs
 * may come back as a new, unlabelled resource with the same identifier.
 */
export class LabelledResources {
  private readonly known = new Map<string, Set<string>>();

  constructor(private readonly capacity = 100_000) {}

  has(resourceId: string, label: string): boolean {
    return this.known.get(resourceId)?.has(label) ?? false;
  }

  add(resourceId: string, label: string): void {
    const labels = this.known.get(resourceId);
    if (labels !== undefined) {
      labels.add(label);
      return;
    }
    if (this.known.size >= this.capacity) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
    this.known.set(resourceId, new Set([label]));
  }

  forget(resourceId: string): void {
    this.known.delete(resourceId);
  }
}

export function resourceIdAt(level: ResourceLevel, stored: StoredInstance): string {
  switch (level) {
    case 'Patient':
      return stored.ParentPatient;
    case 'Study':
      return stored.ParentStudy;
    case 'Series':
      return stored.ParentSeries;
    case 'Instance':
      return stored.ID;
  }
}

/** The label writes a store needs: every (level, label), minus what is known to be set. */
export function labelWrites(
  tenant: Pick<TenantConfig, 'labels' | 'labelsStoreLevels'>,
  stored: StoredInstance,
  labelled: LabelledResources,
): { level: ResourceLevel; resourceId: string; label: string }[] {
  const writes = [];
  for (const level of tenant.labelsStoreLevels) {
    const resourceId = resourceIdAt(level, stored);
    for (const label of tenant.labels) {
      if (level === 'Instance' || !labelled.has(resourceId, label)) writes.push({ level, resourceId, label });
    }
  }
  return writes;
}

/** The C-STORE status Orthanc's own port gives when storing fails this way. */
export function statusOfFailedStore(error: unknown): number {
  return orthancErrorCode(error) === OrthancErrorCode.BadFileFormat
    ? DicomStatus.CannotUnderstand
    : DicomStatus.RefusedOutOfResources;
}

export interface StoreContext {
  orthanc: Orthanc;
  labelled: LabelledResources;
  beforeLabelWrite?: (level: ResourceLevel) => void; // fault injection in tests
}

export async function storeThroughTenant(
  { orthanc, labelled, beforeLabelWrite }: StoreContext,
  tenant: TenantConfig,
  tenantName: string,
  dicom: Buffer,
  callerAet: string,
): Promise<number> {
  let stored: StoredInstance;
  try {
    stored = await orthanc.postBytes<StoredInstance>('/instances', dicom);
  } catch (error) {
    orthanc.error(`${tenantName}: cannot store the instance sent by ${callerAet}: ${describe(error)}`);
    return statusOfFailedStore(error);
  }

  if (stored.Status === 'FilteredOut') {
    // Orthanc's own port answers Success too, for compatibility.
    orthanc.info(`${tenantName}: the instance sent by ${callerAet} was discarded by a filter`);
    return DicomStatus.Success;
  }

  try {
    // Instance first: until it is labelled, the tenant cannot see it.
    for (const write of labelWrites(tenant, stored, labelled).reverse()) {
      beforeLabelWrite?.(write.level);
      await orthanc.put(`${URI_PREFIX[write.level]}${write.resourceId}/labels/${write.label}`);
      if (write.level !== 'Instance') labelled.add(write.resourceId, write.label);
    }
    return DicomStatus.Success;
  } catch (error) {
    orthanc.error(`${tenantName}: cannot label the instance ${stored.ID} sent by ${callerAet}: ${describe(error)}`);
    if (stored.Status === 'Success') await removeNewInstance(orthanc, tenantName, stored.ID);
    return DicomStatus.ProcessingFailure;
  }
}

/**
 * Deleting the instance that this store created also deletes the series, study and
 * patient that it alone created: Orthanc removes parents left without children, and
 * a parent that existed before still has its other children.
 */
async function removeNewInstance(orthanc: Orthanc, tenantName: string, instanceId: string): Promise<void> {
  try {
    await orthanc.delete(`/instances/${instanceId}`);
  } catch (error) {
    orthanc.error(`${tenantName}: cannot remove the unlabelled instance ${instanceId}: ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
