// C-STORE through a tenant: store the instance as received, then label it at the
// tenant's LabelsStoreLevels. A store ends labelled, or fails: what it created is
// removed, and an instance Orthanc already held loses the labels the store added.
// The common case (a new instance) runs in the native shim, following storePlan;
// storeThroughTenant decides everything else.
import type { ResourceLevel, TenantConfig } from './configuration.js';
import { entitledLevel, satisfies } from './entitlement.js';
import { OrthancErrorCode, orthancErrorCode, URI_PREFIX, type Orthanc } from './orthanc.js';

export const DicomStatus = {
  Success: 0x0000,
  RefusedNotAuthorized: 0x0124,
  RefusedOutOfResources: 0xa700,
  CannotUnderstand: 0xc000,
} as const;

/** Orthanc's identifiers of an instance and its parents (computed by the native shim as the core does). */
export type OrthancIds = Record<ResourceLevel, string>;

/** The answer of POST /instances. */
export interface StoredInstance {
  ID: string;
  Status: 'Success' | 'AlreadyStored' | 'FilteredOut' | string;
}

export interface LabelWrite {
  level: ResourceLevel;
  resourceId: string;
  label: string;
}

/** The labels a store must add: every (level, label) of the tenant that the resource lacks. */
export function missingLabels(
  tenant: Pick<TenantConfig, 'labels' | 'labelsStoreLevels'>,
  ids: OrthancIds,
  present: Partial<Record<ResourceLevel, string[]>>,
): LabelWrite[] {
  const writes: LabelWrite[] = [];
  for (const level of tenant.labelsStoreLevels) {
    for (const label of tenant.labels) {
      if (!(present[level] ?? []).includes(label)) writes.push({ level, resourceId: ids[level], label });
    }
  }
  return writes;
}

/**
 * What the native shim does for a C-STORE without asking JS (native/dicom_store.cpp):
 * when `absentBeforePost` answers 404 (or there is none), it POSTs the instance, and
 * if Orthanc answers that it is new, it PUTs `labelUris` ({Patient}, {Study}, {Series}
 * and {Instance} replaced by Orthanc's identifiers). Any other outcome comes back to
 * storeThroughTenant (the instance was held, filtered out, or a call failed).
 */
export interface StorePlan {
  absentBeforePost: string;
  labelUris: string[];
}

/** The deepest level first: a failure then leaves the fewest labels on parents that existed before. */
const DEEPEST_FIRST: ResourceLevel[] = ['Instance', 'Series', 'Study', 'Patient'];

export function storePlan(
  tenant: Pick<TenantConfig, 'labels' | 'labelsStoreLevels'>,
  options: { overwriteInstances: boolean; failParentLabelWrites?: boolean },
): StorePlan {
  const levels = DEEPEST_FIRST.filter((level) => tenant.labelsStoreLevels.includes(level));
  const uri = (level: ResourceLevel, label: string) => `${URI_PREFIX[level]}{${level}}/labels/${label}`;
  let labelUris = levels.flatMap((level) => tenant.labels.map((label) => uri(level, label)));
  if (options.failParentLabelWrites) {
    // MTD_FAULT_INJECTION=labelWrite: a label Orthanc refuses takes the parents' place.
    const parent = levels.find((level) => level !== 'Instance');
    labelUris = labelUris.filter((written) => written.startsWith(URI_PREFIX.Instance));
    if (parent !== undefined) labelUris.push(uri(parent, 'fault!injected'));
  }
  return {
    // With OverwriteInstances, a POST would replace what Orthanc holds: only a new instance skips JS.
    absentBeforePost: options.overwriteInstances ? '/instances/{Instance}/labels' : '',
    labelUris,
  };
}

/** What the native shim's POST /instances gave: Orthanc's answer, or its failure. */
export type PostOutcome = { answer: string } | { failure: { orthancCode: number; message: string } };

/** The C-STORE status Orthanc's own port gives when storing fails this way. */
export function statusOfFailedStore(error: unknown): number {
  return orthancErrorCode(error) === OrthancErrorCode.BadFileFormat
    ? DicomStatus.CannotUnderstand
    : DicomStatus.RefusedOutOfResources;
}

/**
 * Runs the stores of one instance one after the other: check, store and label form one
 * step. The native shim already serialises the stores of an instance; this also covers
 * JS work that outlives a native call that timed out.
 */
export class PerInstanceQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(instanceId: string, step: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(instanceId) ?? Promise.resolve();
    const result = previous.then(step, step);
    const tail = result.catch(() => undefined);
    this.tails.set(instanceId, tail);
    void tail.then(() => {
      if (this.tails.get(instanceId) === tail) this.tails.delete(instanceId);
    });
    return result;
  }
}

export interface StoreContext {
  orthanc: Orthanc;
  queue: PerInstanceQueue;
  overwriteInstances: boolean;
  beforeLabelWrite?: (write: LabelWrite) => void; // fault injection in tests
}

export interface IncomingInstance {
  ids: OrthancIds;
  callerAet: string;
  /** The instance, unless the native shim has POSTed it already. */
  dicom?: Buffer;
  posted?: PostOutcome;
}

export function storeThroughTenant(
  context: StoreContext,
  tenant: TenantConfig,
  tenantName: string,
  incoming: IncomingInstance,
): Promise<number> {
  return context.queue.run(incoming.ids.Instance, () => storeAndLabel(context, tenant, tenantName, incoming));
}

async function storeAndLabel(
  { orthanc, overwriteInstances, beforeLabelWrite }: StoreContext,
  tenant: TenantConfig,
  tenantName: string,
  { ids, dicom, callerAet, posted }: IncomingInstance,
): Promise<number> {
  const post = async (): Promise<StoredInstance> => {
    if (posted === undefined) return orthanc.postBytes<StoredInstance>('/instances', dicom ?? Buffer.alloc(0));
    if ('failure' in posted) throw Object.assign(new Error(posted.failure.message), { orthancCode: posted.failure.orthancCode });
    return JSON.parse(posted.answer) as StoredInstance;
  };
  const readLabels = () => Promise.all(tenant.labelsStoreLevels.map((level) => orthanc.labelsOf(level, ids[level])));
  const refuseForeign = () => {
    orthanc.warning(
      `${tenantName}: refused the instance ${ids.Instance} sent by ${callerAet}: Orthanc already holds it, and it is not ` +
        `this tenant's ("ForeignInstances" is "Reject")`,
    );
    return DicomStatus.RefusedNotAuthorized;
  };

  let stored: StoredInstance;
  let labelsBefore: (string[] | undefined)[]; // per store level; undefined: Orthanc did not hold it
  let existedBefore: boolean;
  try {
    if (overwriteInstances && posted === undefined) {
      // A POST would overwrite what Orthanc holds: decide first.
      labelsBefore = await readLabels();
      const instanceIndex = tenant.labelsStoreLevels.indexOf('Instance');
      existedBefore =
        (instanceIndex >= 0 ? labelsBefore[instanceIndex] : await orthanc.labelsOf('Instance', ids.Instance)) !== undefined;
      if (existedBefore && !isEntitled(tenant, labelsBefore)) {
        if (tenant.foreignInstances === 'Reject') return refuseForeign();
        stored = { ID: ids.Instance, Status: 'AlreadyStored' }; // "Share", never overwritten
      } else {
        stored = await post();
      }
    } else {
      // A POST of an instance Orthanc holds changes nothing ("AlreadyStored"): store and
      // read the parents' labels at once, then decide; the instance's own labels matter
      // only if Orthanc held it.
      const parentReads = Promise.all(
        tenant.labelsStoreLevels.map((level) => (level === 'Instance' ? undefined : orthanc.labelsOf(level, ids[level]))),
      );
      parentReads.catch(() => undefined); // awaited below, unless the POST fails first
      stored = await post();
      existedBefore = stored.Status === 'AlreadyStored';
      const [parents, instance] = await Promise.all([
        parentReads,
        existedBefore ? orthanc.labelsOf('Instance', ids.Instance) : undefined,
      ]);
      labelsBefore = tenant.labelsStoreLevels.map((level, index) => (level === 'Instance' ? instance : parents[index]));
      if (existedBefore && !isEntitled(tenant, labelsBefore)) {
        if (tenant.foreignInstances === 'Reject') return refuseForeign();
      }
    }
  } catch (error) {
    orthanc.error(`${tenantName}: cannot store the instance sent by ${callerAet}: ${describe(error)}`);
    return statusOfFailedStore(error);
  }
  if (stored.Status === 'FilteredOut') {
    // Orthanc's own port answers Success too, for compatibility.
    orthanc.info(`${tenantName}: the instance sent by ${callerAet} was discarded by a filter`);
    return DicomStatus.Success;
  }
  if (stored.ID !== ids.Instance) {
    orthanc.error(`${tenantName}: Orthanc stored the instance as ${stored.ID}, not ${ids.Instance} as expected; it is not labelled`);
    return DicomStatus.RefusedOutOfResources;
  }

  // An instance that was new, or overwritten (OverwriteInstances), carries no label yet.
  const instanceIsNew = stored.Status !== 'AlreadyStored';
  const present: Partial<Record<ResourceLevel, string[]>> = {};
  tenant.labelsStoreLevels.forEach((level, index) => {
    present[level] = level === 'Instance' && instanceIsNew ? [] : (labelsBefore[index] ?? []);
  });
  const writes = missingLabels(tenant, ids, present);
  const added: LabelWrite[] = [];
  const outcomes = await Promise.allSettled(
    writes.map(async (write) => {
      beforeLabelWrite?.(write);
      await orthanc.put(`${URI_PREFIX[write.level]}${write.resourceId}/labels/${write.label}`);
      added.push(write);
    }),
  );
  const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure === undefined) return DicomStatus.Success;

  orthanc.error(`${tenantName}: cannot label the instance ${stored.ID} sent by ${callerAet}, the store fails: ${describe(failure.reason)}`);
  await undo(orthanc, tenantName, ids.Instance, existedBefore, added);
  return DicomStatus.RefusedOutOfResources; // as Orthanc's own port when storing fails
}

/** The native shim stored a new instance but could not label it: the store fails, and leaves nothing. */
export async function labellingFailed(
  { orthanc }: Pick<StoreContext, 'orthanc'>,
  tenantName: string,
  { ids, callerAet }: Pick<IncomingInstance, 'ids' | 'callerAet'>,
  error: string,
): Promise<number> {
  orthanc.error(`${tenantName}: cannot label the instance ${ids.Instance} sent by ${callerAet}, the store fails: ${error}`);
  await undo(orthanc, tenantName, ids.Instance, false, []);
  return DicomStatus.RefusedOutOfResources;
}

/**
 * Whether an instance Orthanc holds is the tenant's, from the labels of the store levels
 * (see entitlement.ts). Never for a "None" tenant: what it stores carries its labels, so
 * an instance it would see came through another tenant or Orthanc's own port.
 */
function isEntitled(tenant: TenantConfig, labelsByStoreLevel: (string[] | undefined)[]): boolean {
  if (tenant.labelsConstraint === 'None') return false;
  const index = tenant.labelsStoreLevels.indexOf(entitledLevel(tenant));
  return satisfies(tenant, labelsByStoreLevel[index] ?? []);
}

/**
 * A new instance is deleted, which also deletes the series, study and patient that it
 * alone created (Orthanc removes parents left without children). An instance that
 * existed before keeps its content; only the labels this store added are removed.
 */
async function undo(orthanc: Orthanc, tenantName: string, instanceId: string, existedBefore: boolean, added: LabelWrite[]) {
  try {
    if (!existedBefore) {
      await orthanc.delete(`/instances/${instanceId}`);
      return;
    }
    for (const write of added) {
      await orthanc.delete(`${URI_PREFIX[write.level]}${write.resourceId}/labels/${write.label}`);
    }
  } catch (error) {
    orthanc.error(`${tenantName}: cannot undo the failed store of instance ${instanceId}: ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
