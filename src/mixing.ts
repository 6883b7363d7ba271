// Patients that hold instances of several senders. Orthanc keeps a patient's, study's
// and series' attributes from their first instance, even once it is deleted: on a
// patient that two senders (tenants, or a tenant and Orthanc's own port) stored into,
// those values may be another sender's. Such a patient carries the label MIXED_LABEL,
// in Orthanc's database (so every node of a cluster sees it, and it survives restarts):
// C-FIND answers its resources from each tenant's own instances (find-entitled.ts).
// Once deletions leave it with the instances of one sender only, its values are rebuilt
// from what remains (Orthanc's /reconstruct) and the label goes.
//
// Senders are told apart by labels: a patient is mixed when its studies, its series or
// its instances do not all carry the same labels (then some tenant's constraint may
// tell them apart). It is checked a moment after each new instance (long enough for the
// store to label it), and every marked patient after deletions and at start-up. A patient
// that Orthanc created meanwhile holds one sender's, and is not read, when it got one new
// instance, or when each new instance it got was stored by a tenant of this process with
// the same label writes (the stores' reports are counted against Orthanc's changes).
import pLimit from 'p-limit';
import type { ChangeEvent, ChangeOfInterest } from './bridge.js';
import { isExactlyMatchable, orthancId, Tags } from './dicom.js';
import type { StoreActivity } from './native.js';
import { describeError, type Orthanc } from './orthanc.js';

export const MIXED_LABEL = 'multitenant-mixed';

/** The changes of Orthanc's store this module listens to (the shim forwards only these). */
export const CHANGES_OF_INTEREST: readonly ChangeOfInterest[] = ['NewPatient', 'NewChildInstance:Patient', 'Deleted'];

/** How long after a new instance its patient is checked: the store labels it meanwhile. */
const CHECK_DELAY_MS = 250;
const CONCURRENT_CHECKS = 2;
/** A patient is checked once it received no new instance for this long (notifications come at most 100 ms apart)... */
const QUIET_MS = 200;
/** ...or this long after it was first noticed, if instances never stop arriving. */
const MAX_WAIT_MS = 5_000;
/**
 * A patient just marked is looked at again after this long: another node's store into it,
 * a moment away from its labels, may have looked like another sender's.
 */
const RECHECK_DELAY_MS = 30_000;
/** /tools/find constraints hold lists of values; SQL statements have a bounded size. */
const CHUNK = 500;
/** Up to this many marked patients, a C-FIND reads the list of all of them. */
export const MARKED_AT_ONCE = 1000;
/** Patients remembered as one sender's (Mixing.singleSenderPlans), the oldest forgotten first. */
export const SINGLE_SENDERS_KEPT = 100_000;

interface PendingCheck {
  afterDeletion: boolean;
  /** Date.now() when the patient was first, and last, noticed since its last check. */
  firstNoticed: number;
  lastNoticed: number;
  /** Orthanc created the patient since (NewPatient), and how many new instances it got. */
  created: boolean;
  newInstances: number;
  /** Noticed for another reason than a new instance (a C-FIND, a deletion, a sweep, a recheck). */
  mustRead: boolean;
  /** The instances that tenants of this process created in it (and labelled), and their label writes. */
  tenantStores: number;
  labelPlans: Set<string>;
}

/** Why a patient is noticed: a new instance, its creation, or anything else (then it is read). */
type Notice = 'newInstance' | 'created' | 'other';

/** A study, series or instance as the check reads it: its identifier and its labels. */
type LabelledResource = { ID: string; Labels?: string[] };

interface PatientState {
  labels: string[];
  /** The label sets of its studies, series and instances. */
  levels: string[][][];
  studies: string[];
  series: string[];
}

export class Mixing {
  /** Patients to check, whether a deletion happened since they changed, and when they did. */
  private readonly pending = new Map<string, PendingCheck>();
  private sweepRequested = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly checking = new Set<string>();
  private deletionEpoch = 0;
  private readonly limit = pLimit(CONCURRENT_CHECKS);
  /**
   * The patients this process marked, or saw marked. On Orthanc's built-in SQLite index,
   * which one Orthanc alone opens, that is every mark once a sweep has listed those in
   * Orthanc (marksKnown): a C-FIND then needs no lookup of them. A mark is known before it
   * is written and forgotten once removed, so the knowledge errs towards "marked" only
   * (whose answers are computed from the tenant's own instances, as they would be). On any
   * other index, a cluster's other nodes mark patients too: C-FIND reads Orthanc's labels.
   */
  private readonly knownMarks = new Set<string>();
  private marksKnown = false;
  /** Counts this process's marks and unmarks: a sweep that saw none meanwhile may replace knownMarks. */
  private markChanges = 0;
  /**
   * Patients known to hold the instances of one sender, by the label writes of its stores
   * (their label plan): new instances that tenants of this process stored with that plan
   * keep them so, and they are not read again (a modality that sends a study in several
   * associations, with pauses between them, would have its patient read after each).
   * Like knownMarks, only on Orthanc's built-in index, where every store is this
   * process's; forgotten at any deletion.
   */
  private readonly singleSenderPlans = new Map<string, string>();

  constructor(
    private readonly orthanc: Orthanc,
    private readonly log: { info(message: string): void; error(message: string): void },
    /** The stores of this process into the patient (NativeBridge.storeActivity). */
    private readonly storeActivity: (patientId: string) => StoreActivity = () => ({ inProgress: false, lastBegun: 0, now: 0 }),
  ) {}

  /** Repairs what deletions changed while the plugin did not run. */
  start(): void {
    this.sweepRequested = true;
    this.schedule();
  }

  notice(events: ChangeEvent[]): void {
    for (const event of events) {
      if (event.type === 'NewChildInstance' && event.level === 'Patient') this.noticePatient(event.id, false, 'newInstance');
      if (event.type === 'NewPatient') this.noticePatient(event.id, false, 'created');
      if (event.type === 'Deleted') this.noticeDeletion();
    }
  }

  /** A patient whose content changed (by Orthanc identifier). */
  noticePatient(patientId: string, afterDeletion = false, notice: Notice = 'other'): void {
    const entry = this.entryOf(patientId);
    entry.afterDeletion ||= afterDeletion;
    if (notice === 'created') entry.created = true;
    else if (notice === 'newInstance') entry.newInstances++;
    else entry.mustRead = true;
  }

  /** The patient's pending check, noticed now. */
  private entryOf(patientId: string): PendingCheck {
    const now = Date.now();
    let entry = this.pending.get(patientId);
    if (entry === undefined) {
      entry = { afterDeletion: false, firstNoticed: now, lastNoticed: now, created: false, newInstances: 0, mustRead: false, tenantStores: 0, labelPlans: new Set() };
      this.pending.set(patientId, entry);
    }
    entry.lastNoticed = now;
    this.schedule();
    return entry;
  }

  /** A tenant of this process created an instance in this patient and labelled it with these writes. */
  noticeTenantStore(patientId: string, labelPlan: string): void {
    const entry = this.entryOf(patientId);
    entry.tenantStores++;
    entry.labelPlans.add(labelPlan);
  }

  /** Patients a C-FIND saw holding instances of several senders (by PatientID). */
  noticeShared(patientIds: Iterable<string>): void {
    for (const patientId of patientIds) this.noticePatient(orthancId(patientId));
  }

  private noticeDeletion(): void {
    // A patient that changed before this deletion may have lost the instance that gave
    // its values: if it is left with one sender, its values are rebuilt all the same.
    this.deletionEpoch++;
    this.singleSenderPlans.clear();
    for (const entry of this.pending.values()) {
      entry.afterDeletion = true;
      entry.mustRead = true;
    }
    this.sweepRequested = true;
    this.schedule();
  }

  /**
   * The PatientIDs among these whose patient carries MIXED_LABEL (through a request's view
   * of Orthanc). Without asking Orthanc when the marks are known (knownMarks). Else none
   * when Orthanc's labels in use lack it; else usually one lookup of every
   * marked patient, by label alone: it reads no DICOM tag, so it costs far less than
   * matching PatientIDs, and reaches every PatientID exactly (by its Orthanc identifier).
   * Where more than MARKED_AT_ONCE patients are marked, the candidates' PatientIDs are
   * looked up instead.
   */
  async markedAmong(view: Orthanc, patientIds: string[]): Promise<Set<string>> {
    if (patientIds.length === 0) return new Set();
    if (this.marksKnown) {
      // Most often no patient is marked at all: the candidates' identifiers (a SHA-1 each) are not computed.
      if (this.knownMarks.size === 0) return new Set();
      return new Set(patientIds.filter((patientId) => this.knownMarks.has(orthancId(patientId))));
    }
    // Most often no patient is marked at all: Orthanc's list of the labels in use says so
    // for far less than a lookup of the patients.
    if (!(await view.getJson<string[]>('/tools/labels')).includes(MIXED_LABEL)) return new Set();
    const everyMarked = await view.findAtMost<string>({ Level: 'Patient', Query: {}, Labels: [MIXED_LABEL], LabelsConstraint: 'All' }, MARKED_AT_ONCE);
    if (everyMarked === undefined) return this.markedByPatientId(view, patientIds);
    const marked = new Set(everyMarked);
    return new Set(patientIds.filter((patientId) => marked.has(orthancId(patientId))));
  }

  private async markedByPatientId(view: Orthanc, patientIds: string[]): Promise<Set<string>> {
    const marked = new Set<string>();
    const matchable = patientIds.filter(isExactlyMatchable);
    for (let start = 0; start < matchable.length; start += CHUNK) {
      const found = await view.find<{ RequestedTags?: Record<string, unknown> }>({
        Level: 'Patient',
        Query: { [Tags.PatientID]: matchable.slice(start, start + CHUNK).join('\\') },
        Labels: [MIXED_LABEL],
        LabelsConstraint: 'All',
        Expand: true,
        Short: true,
        RequestedTags: [Tags.PatientID],
      });
      for (const patient of found) {
        const value = patient.RequestedTags?.[Tags.PatientID];
        if (typeof value === 'string') marked.add(value);
      }
    }
    await Promise.all(
      patientIds
        .filter((patientId) => !isExactlyMatchable(patientId))
        .map(async (patientId) => {
          if ((await view.labelsOf('Patient', orthancId(patientId)))?.includes(MIXED_LABEL)) marked.add(patientId);
        }),
    );
    return marked;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.flush(), CHECK_DELAY_MS);
  }

  private flush(): void {
    this.timer = undefined;
    const now = Date.now();
    const batch = [...this.pending.entries()].filter(([patientId, { firstNoticed, lastNoticed }]) => {
      if (this.checking.has(patientId)) return false;
      // While instances keep arriving (an association sending a large study), reading all
      // the patient's labels would be wasted: wait for a pause, though not for ever.
      return now - lastNoticed >= QUIET_MS || now - firstNoticed >= MAX_WAIT_MS;
    });
    for (const [patientId] of batch) this.pending.delete(patientId);
    for (const [patientId, entry] of batch) {
      if (this.mustBeRead(patientId, entry)) void this.limit(() => this.check(patientId, entry.afterDeletion, soleStorePlan(entry)));
      else if (entry.newInstances > 0) this.rememberSender(patientId, soleStorePlan(entry));
    }
    if (this.sweepRequested) {
      this.sweepRequested = false;
      void this.limit(() => this.sweep());
    }
    if (this.pending.size > 0) this.schedule(); // those being checked, once more
  }

  private async sweep(): Promise<void> {
    const changesBefore = this.markChanges;
    try {
      const [marked, builtInIndex] = await Promise.all([
        this.orthanc.find<string>({ Level: 'Patient', Query: {}, Labels: [MIXED_LABEL], LabelsConstraint: 'All' }),
        this.orthanc.hasBuiltInIndex(),
      ]);
      // A mark or unmark of this process during the listing may be missing from it, or
      // still in it: then what is known is kept beside what was listed.
      if (this.markChanges === changesBefore) this.knownMarks.clear();
      for (const patientId of marked) this.knownMarks.add(patientId);
      this.marksKnown = builtInIndex;
      for (const patientId of marked) this.noticePatient(patientId);
    } catch (error) {
      this.log.error(`multitenant-dicom: cannot list the patients marked "${MIXED_LABEL}": ${describeError(error)}`);
    }
  }

  /**
   * Whether a pending check must read the patient. Not when nothing but stores' reports
   * came (their new instances were, or will be, noticed on their own); not when Orthanc
   * created it meanwhile and it got one new instance; not when every new instance was
   * stored by tenants of this process with one label plan, and Orthanc created the
   * patient meanwhile or it was known to hold that plan's instances only. A change and
   * its store's report may reach this module in different checks: a change without its
   * report is read then, and one whose report came earlier is noticed on its own, without
   * its report, so it is read.
   */
  private mustBeRead(patientId: string, entry: PendingCheck): boolean {
    if (entry.mustRead) return true;
    if (entry.newInstances === 0) return false;
    if (entry.created && entry.newInstances === 1) return false;
    const plan = soleStorePlan(entry);
    if (plan === undefined) return true;
    return !(entry.created || this.singleSenderPlans.get(patientId) === plan);
  }

  /** The patient holds one sender's instances, stored with this label plan (undefined: unknown). */
  private rememberSender(patientId: string, plan: string | undefined): void {
    this.singleSenderPlans.delete(patientId);
    if (plan === undefined || !this.marksKnown) return;
    this.singleSenderPlans.set(patientId, plan);
    if (this.singleSenderPlans.size > SINGLE_SENDERS_KEPT) this.singleSenderPlans.delete(this.singleSenderPlans.keys().next().value!);
  }

  private async check(patientId: string, afterDeletion: boolean, storePlan: string | undefined): Promise<void> {
    const before = this.storeActivity(patientId);
    if (before.inProgress) {
      // An instance a moment away from its labels is no other sender's: look again later.
      this.noticePatient(patientId, afterDeletion);
      return;
    }
    this.checking.add(patientId);
    const epoch = this.deletionEpoch;
    try {
      const state = await this.read(patientId);
      if (state === undefined) {
        this.forgetMark(patientId); // deleted meanwhile, with its labels
        return;
      }
      const after = this.storeActivity(patientId);
      if (after.inProgress || after.lastBegun > before.now) {
        // A store began while the patient was read: what was read may show its instance unlabelled.
        this.noticePatient(patientId, afterDeletion);
        return;
      }
      const marked = state.labels.includes(MIXED_LABEL);
      if (marked) this.knownMarks.add(patientId);
      const singleSender = isSingleSender(state);
      if (this.deletionEpoch === epoch) this.rememberSender(patientId, singleSender ? storePlan : undefined);
      if (!singleSender) {
        if (!marked) {
          this.markChanges++;
          this.knownMarks.add(patientId);
          await this.orthanc.put(`/patients/${patientId}/labels/${MIXED_LABEL}`);
          this.log.info(`multitenant-dicom: patient ${patientId} holds instances of several senders: marked "${MIXED_LABEL}"`);
          setTimeout(() => this.noticePatient(patientId), RECHECK_DELAY_MS).unref();
        }
      } else if (marked || afterDeletion) {
        await this.repair(patientId, state);
        if (marked) {
          await this.orthanc.delete(`/patients/${patientId}/labels/${MIXED_LABEL}`);
          this.forgetMark(patientId);
        }
        this.log.info(`multitenant-dicom: patient ${patientId} now holds the instances of one sender: its values are rebuilt from them`);
      }
    } catch (error) {
      this.log.error(`multitenant-dicom: cannot check whether patient ${patientId} holds instances of several senders: ${describeError(error)}`);
    } finally {
      this.checking.delete(patientId);
      if (this.deletionEpoch !== epoch) this.noticePatient(patientId, true);
    }
  }

  private forgetMark(patientId: string): void {
    if (!this.knownMarks.delete(patientId)) return;
    this.markChanges++;
  }

  private async read(patientId: string): Promise<PatientState | undefined> {
    return (await this.orthanc.supportsExtendedFind()) ? this.readLabelsOnly(patientId) : this.readExpanded(patientId);
  }

  /** Only the labels of the patient's descendants (Orthanc >= 1.12.5): far cheaper than their descriptions. */
  private async readLabelsOnly(patientId: string): Promise<PatientState | undefined> {
    const descendants = (Level: 'Study' | 'Series' | 'Instance') =>
      this.orthanc.find<LabelledResource>({ Level, Query: {}, ParentPatient: patientId, ResponseContent: ['Labels'] });
    const [labels, studies, series, instances] = await Promise.all([
      this.orthanc.labelsOf('Patient', patientId),
      descendants('Study'),
      descendants('Series'),
      descendants('Instance'),
    ]);
    // A patient always holds a study: none means it was deleted while it was read.
    if (labels === undefined || studies.length === 0) return undefined;
    return stateOf(labels, studies, series, instances);
  }

  private async readExpanded(patientId: string): Promise<PatientState | undefined> {
    const uri = `/patients/${patientId}`;
    const [patient, studies, series, instances] = await Promise.all([
      this.orthanc.getJsonIfExists<LabelledResource>(uri),
      this.orthanc.getJsonIfExists<LabelledResource[]>(`${uri}/studies`),
      this.orthanc.getJsonIfExists<LabelledResource[]>(`${uri}/series`),
      this.orthanc.getJsonIfExists<LabelledResource[]>(`${uri}/instances`),
    ]);
    if (patient === undefined || studies === undefined || series === undefined || instances === undefined) return undefined;
    return stateOf(patient.Labels ?? [], studies, series, instances);
  }

  /** Orthanc takes each resource's attributes from one of its instances again. */
  private async repair(patientId: string, state: PatientState): Promise<void> {
    const body = { LimitToThisLevelMainDicomTags: true };
    await this.orthanc.post(`/patients/${patientId}/reconstruct`, body);
    for (const study of state.studies) await this.orthanc.post(`/studies/${study}/reconstruct`, body);
    for (const series of state.series) await this.orthanc.post(`/series/${series}/reconstruct`, body);
  }
}

/** The label plan of every new instance of the check, when tenants of this process stored each with that one plan. */
function soleStorePlan(entry: PendingCheck): string | undefined {
  if (entry.newInstances === 0 || entry.newInstances !== entry.tenantStores || entry.labelPlans.size !== 1) return undefined;
  return entry.labelPlans.values().next().value;
}

function stateOf(patientLabels: string[], studies: LabelledResource[], series: LabelledResource[], instances: LabelledResource[]): PatientState {
  const labelSets = (resources: LabelledResource[]) => resources.map((resource) => [...(resource.Labels ?? [])].sort());
  return {
    labels: patientLabels,
    levels: [labelSets(studies), labelSets(series), labelSets(instances)],
    studies: studies.map((study) => study.ID),
    series: series.map((one) => one.ID),
  };
}

/** Whether every study, every series and every instance of the patient carries the same labels. */
export function isSingleSender(state: Pick<PatientState, 'levels'>): boolean {
  return state.levels.every((labelSets) => new Set(labelSets.map((labels) => labels.join('\n'))).size <= 1);
}
