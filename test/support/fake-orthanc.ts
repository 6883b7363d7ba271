// An in-memory Orthanc for unit tests of the orchestration (find, move, mixing): a
// NativeBridge (src/native.ts) that serves the part of Orthanc's REST API the plugin
// calls, and records every call.
//
// It holds patients, studies, series and instances with Orthanc's identifiers
// (orthancId, the SHA-1 scheme of DicomInstanceHasher), each resource's main DICOM tags
// and labels, and each instance's whole "file" (its tags). Tags are "gggg,eeee",
// lower-case hexadecimal, as the plugin writes them.
//
// Orthanc's semantics modelled here, as Orthanc 1.12.7 (the Debian 13 one, with
// HasExtendedFind) was seen to behave; the plugin relies on them, or guards against them:
// - A patient's, study's or series' main tags come from its FIRST instance stored, and
//   stay when later instances differ and when that instance is deleted; only
//   POST /{level}/{id}/reconstruct (LimitToThisLevelMainDicomTags) sets them again, from
//   one remaining instance (here the first in storage order; Orthanc picks one).
// - Patient-level tags are copied at the study level (StatelessDatabaseOperations::
//   NormalizeLookup): below the patient level, a constraint or a requested patient tag
//   reads the study's copy (from the study's first instance; a study's reconstruct
//   refreshes it, not the patient).
// - /tools/find constraints (DatabaseLookup::AddDicomConstraintInternal): an empty value
//   matches anything; DA/TM/DT with "-" is a range; a value with "\" is a list of values
//   compared for equality ("*" inside a list is a literal); otherwise "*" and "?" are
//   wildcards for AE, CS, LO, LT, PN, SH, ST, UC, UR, UT, and refused on other VRs (a UID
//   with "*" or "?": orthancCode 3, "Wildcards are not allowed on tag 0020,000d").
//   Every tag, identifiers included, compares case-sensitively only with
//   "CaseSensitive": true (the default is false).
// - A resource lacking the tag of a constraint does not match it.
// - A constraint on a main tag of a level below the query level (e.g. SeriesInstanceUID
//   in a Study-level find) matches nothing: Orthanc 1.12.7 (SQLite) answered [] to a
//   Study-level SeriesInstanceUID or Modality that the study's series have (and failed a
//   Patient-level SOPInstanceUID with "SQLite: Cannot prepare a cached statement").
// - Other tags that no level at or above the query level holds as main tags are read
//   from a file of the resource (here its first remaining instance), for constraints and
//   RequestedTags. Constraints on computed tags are not modelled (8).
// - Computed tags (NumberOf*Related*, ModalitiesInStudy from the series' Modality main
//   tags, SOPClassesInStudy from the instances' files) exist only at their own level and
//   count every instance, whoever sent it.
// - /tools/lookup compares identifiers after NormalizeIdentifier (ASCII only, upper case,
//   trimmed): it is case-insensitive.
// - A label that is not 1 to 64 of [A-Za-z0-9_-]: PUT and DELETE refuse it (3), a
//   /tools/find filter on it matches as a label that nobody carries.
// - Unknown resources and routes reject with orthancCode 17; malformed requests with 8.
// - Deleting the last instance of a series, study or patient deletes it too.
// - Limit/Since page the matches in order (Orthanc's limits on paging are not modelled).
// Answers are in storage order (Orthanc's internal ids), so the fake is deterministic.
import type { TenantConfig } from '../../src/configuration.js';
import { depth, LEVELS, orthancId, Tags, type OrthancIds, type ResourceLevel } from '../../src/dicom.js';
import type { Dispatcher, LogLevel, NativeBridge } from '../../src/native.js';
import type { FindRequest } from '../../src/orthanc.js';

/** The tags tests name (any other tag is given in hex). */
export const TAG = {
  PatientID: '0010,0020',
  PatientName: '0010,0010',
  PatientBirthDate: '0010,0030',
  PatientSex: '0010,0040',
  StudyInstanceUID: '0020,000d',
  StudyDate: '0008,0020',
  StudyDescription: '0008,1030',
  AccessionNumber: '0008,0050',
  SeriesInstanceUID: '0020,000e',
  Modality: '0008,0060',
  SeriesNumber: '0020,0011',
  SOPInstanceUID: '0008,0018',
  SOPClassUID: '0008,0016',
  InstanceNumber: '0020,0013',
} as const;
export type TagName = keyof typeof TAG;

const NAME_OF: Record<string, string> = Object.fromEntries(Object.entries(TAG).map(([name, tag]) => [tag, name]));

const VR: Record<string, string> = {
  [TAG.PatientID]: 'LO',
  [TAG.PatientName]: 'PN',
  [TAG.PatientBirthDate]: 'DA',
  [TAG.PatientSex]: 'CS',
  [TAG.StudyInstanceUID]: 'UI',
  [TAG.StudyDate]: 'DA',
  [TAG.StudyDescription]: 'LO',
  [TAG.AccessionNumber]: 'SH',
  [TAG.SeriesInstanceUID]: 'UI',
  [TAG.Modality]: 'CS',
  [TAG.SeriesNumber]: 'IS',
  [TAG.SOPInstanceUID]: 'UI',
  [TAG.SOPClassUID]: 'UI',
  [TAG.InstanceNumber]: 'IS',
  [Tags.NumberOfPatientRelatedStudies]: 'IS',
  [Tags.NumberOfPatientRelatedSeries]: 'IS',
  [Tags.NumberOfPatientRelatedInstances]: 'IS',
  [Tags.NumberOfStudyRelatedSeries]: 'IS',
  [Tags.NumberOfStudyRelatedInstances]: 'IS',
  [Tags.NumberOfSeriesRelatedInstances]: 'IS',
  [Tags.ModalitiesInStudy]: 'CS',
  [Tags.SOPClassesInStudy]: 'UI',
};

/** The VR of a tag the fake knows (LO for the others), e.g. for the elements of a C-FIND identifier. */
export function vrOf(tag: string): string {
  return VR[tag] ?? 'LO';
}

const WILDCARD_VRS = new Set(['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT']);

/** A subset of Orthanc's default main DICOM tags per level (DicomMap.cpp). */
const MAIN_TAGS: Record<ResourceLevel, readonly string[]> = {
  Patient: [TAG.PatientID, TAG.PatientName, TAG.PatientBirthDate, TAG.PatientSex],
  Study: [TAG.StudyInstanceUID, TAG.StudyDate, TAG.StudyDescription, TAG.AccessionNumber],
  Series: [TAG.SeriesInstanceUID, TAG.Modality, TAG.SeriesNumber],
  Instance: [TAG.SOPInstanceUID, TAG.InstanceNumber],
};

const COUNTER_LEVEL: Record<string, ResourceLevel> = {
  [Tags.NumberOfPatientRelatedStudies]: 'Patient',
  [Tags.NumberOfPatientRelatedSeries]: 'Patient',
  [Tags.NumberOfPatientRelatedInstances]: 'Patient',
  [Tags.NumberOfStudyRelatedSeries]: 'Study',
  [Tags.NumberOfStudyRelatedInstances]: 'Study',
  [Tags.SOPClassesInStudy]: 'Study',
  [Tags.ModalitiesInStudy]: 'Study',
  [Tags.NumberOfSeriesRelatedInstances]: 'Series',
};

const COLLECTION: Record<ResourceLevel, string> = { Patient: 'patients', Study: 'studies', Series: 'series', Instance: 'instances' };
const LEVEL_OF_COLLECTION: Record<string, ResourceLevel> = { patients: 'Patient', studies: 'Study', series: 'Series', instances: 'Instance' };
const LEVEL_OF_SINGULAR: Record<string, ResourceLevel> = { patient: 'Patient', study: 'Study', series: 'Series' };

/** An instance's tags: by name (TAG) or by hex key. */
export type InstanceTags = Partial<Record<TagName, string>> & Record<string, string>;
export type LabelsByLevel = Partial<Record<ResourceLevel, string[]>>;

export interface RecordedCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  uri: string;
  /** JSON bodies parsed, others as text; absent for GET and DELETE. */
  body?: unknown;
}

interface Resource {
  level: ResourceLevel;
  id: string;
  parent: Resource | undefined;
  children: Resource[]; // in storage order
  mainTags: Record<string, string>;
  /** Study only: the patient-level tags, copied from the study's first instance. */
  patientCopy: Record<string, string>;
  labels: Set<string>;
  /** Instance only: every tag of its file. */
  file: Record<string, string>;
}

class RestError extends Error {
  constructor(
    message: string,
    readonly orthancCode: number,
  ) {
    super(message);
  }
}
const unknown = (what: string) => new RestError(`Unknown resource: ${what}`, 17);
const badRequest = (why: string) => new RestError(`Bad request: ${why}`, 8);
const outOfRange = (why: string) => new RestError(`Parameter out of range: ${why}`, 3);
const isValidLabel = (label: string) => /^[A-Za-z0-9_-]{1,64}$/.test(label);

export class FakeOrthanc {
  /** Every REST call, in the order the plugin made them. */
  readonly calls: RecordedCall[] = [];
  /** Capabilities.HasExtendedFind of GET /system: whether Orthanc.find asks ResponseContent. */
  hasExtendedFind = true;
  /** DatabaseBackendPlugin of GET /system when set: null for Orthanc's built-in SQLite index, a path for a database plugin's. */
  databaseBackendPlugin: string | null | undefined;
  /** The answer of GET /modalities?expand (Orthanc's serialised DicomModalities). */
  modalities: Record<string, unknown> = {};
  /** Orthanc ids of the patients NativeBridge.storeActivity says are being stored into (beginStore, endStore). */
  readonly storesInProgress = new Set<string>();
  private storesBegun = 0;
  private readonly lastStoreBegun = new Map<string, number>();
  /** Runs as each REST call is answered (after it is recorded): what happens meanwhile in Orthanc. */
  whileAnswering: ((call: RecordedCall) => void) | undefined;
  /** POST /{level}/{id}/reconstruct calls, in order. */
  readonly reconstructions: { level: ResourceLevel; id: string; body: unknown }[] = [];
  /** POST /modalities/{name}/store calls (C-MOVE handed to Orthanc's job engine). */
  readonly jobs: { modality: string; body: unknown }[] = [];
  readonly logs: string[] = [];
  configuration: Record<string, unknown> = {};
  dispatcher: Dispatcher | undefined;
  /**
   * When true, every answer waits for a macrotask (setImmediate), so that calls made
   * together are in flight together: maxInFlight then shows how many ran at once.
   */
  deferAnswers = false;
  inFlight = 0;
  maxInFlight = 0;

  private readonly resources: Record<ResourceLevel, Map<string, Resource>> = {
    Patient: new Map(),
    Study: new Map(),
    Series: new Map(),
    Instance: new Map(),
  };

  readonly bridge: NativeBridge = {
    restGet: (uri) => this.serve({ method: 'GET', uri }, () => this.get(uri)),
    restPost: (uri, body) => this.serve({ method: 'POST', uri, body: parseBody(body) }, () => this.post(uri, body.toString())),
    restPut: (uri, body) => this.serve({ method: 'PUT', uri, body: parseBody(body) }, () => this.put(uri)),
    restDelete: async (uri) => {
      await this.serve({ method: 'DELETE', uri }, () => this.delete(uri));
    },
    applyServers: async () => [],
    getGlobalProperty: async () => '',
    setGlobalProperty: async () => {},
    getConfigurationPath: () => null,
    getConfiguration: () => JSON.stringify(this.configuration),
    log: (level: LogLevel, message: string) => this.logs.push(`${level}: ${message}`),
    storeActivity: (patientId) => ({
      inProgress: this.storesInProgress.has(patientId),
      lastBegun: this.lastStoreBegun.get(patientId) ?? 0,
      now: this.storesBegun,
    }),
    setDispatcher: (dispatcher) => {
      this.dispatcher = dispatcher;
    },
  };

  // -------------------------------------------------------------------------------------
  // Setting up and inspecting the store (no call recorded).

  /**
   * Stores an instance as Orthanc's POST /instances would (resources created on the way
   * take their main tags from it), then adds the labels given per level.
   */
  store(named: InstanceTags, labels: LabelsByLevel = {}): OrthancIds {
    const tags = toHex(named);
    const patientId = tags[TAG.PatientID] ?? '';
    const uids = [TAG.StudyInstanceUID, TAG.SeriesInstanceUID, TAG.SOPInstanceUID].map((tag) => {
      const uid = tags[tag];
      if (uid === undefined) throw new Error(`FakeOrthanc.store: the instance needs ${NAME_OF[tag]}`);
      return uid;
    });
    const ids: OrthancIds = {
      Patient: orthancId(patientId),
      Study: orthancId(patientId, uids[0]!),
      Series: orthancId(patientId, uids[0]!, uids[1]!),
      Instance: orthancId(patientId, ...uids),
    };
    if (this.resources.Instance.has(ids.Instance)) throw new Error(`FakeOrthanc.store: already holds ${tags[TAG.SOPInstanceUID]}`);
    let parent: Resource | undefined;
    for (const level of LEVELS) {
      let resource = this.resources[level].get(ids[level]);
      if (resource === undefined) {
        resource = {
          level,
          id: ids[level],
          parent,
          children: [],
          mainTags: pick(tags, MAIN_TAGS[level]),
          patientCopy: level === 'Study' ? pick(tags, MAIN_TAGS.Patient) : {},
          labels: new Set(),
          file: level === 'Instance' ? { ...tags } : {},
        };
        this.resources[level].set(resource.id, resource);
        parent?.children.push(resource);
      }
      for (const label of labels[level] ?? []) resource.labels.add(label);
      parent = resource;
    }
    return ids;
  }

  /** Stores an instance as a tenant's C-STORE does: every label of the tenant at every level of its LabelsStoreLevels. */
  storeThrough(tenant: Pick<TenantConfig, 'labels' | 'labelsStoreLevels'>, tags: InstanceTags): OrthancIds {
    return this.store(tags, Object.fromEntries(tenant.labelsStoreLevels.map((level) => [level, tenant.labels])));
  }

  has(level: ResourceLevel, id: string): boolean {
    return this.resources[level].has(id);
  }

  labelsOf(level: ResourceLevel, id: string): string[] {
    return [...this.require(level, id).labels].sort();
  }

  addLabel(level: ResourceLevel, id: string, label: string): void {
    this.require(level, id).labels.add(label);
  }

  /** The main tags Orthanc keeps for a resource (hex keys). */
  mainTagsOf(level: ResourceLevel, id: string): Record<string, string> {
    return { ...this.require(level, id).mainTags };
  }

  /** Deletes a resource and its descendants, and the ancestors left empty (as DELETE /{level}/{id}). */
  remove(level: ResourceLevel, id: string): void {
    const resource = this.require(level, id);
    const drop = (one: Resource) => {
      for (const child of one.children) drop(child);
      this.resources[one.level].delete(one.id);
    };
    drop(resource);
    for (let child = resource, parent = resource.parent; parent !== undefined; child = parent, parent = parent.parent) {
      parent.children = parent.children.filter((other) => other !== child);
      if (parent.children.length > 0) break;
      this.resources[parent.level].delete(parent.id);
    }
  }

  /** The bodies of the POST /tools/find calls recorded. */
  finds(): FindCallBody[] {
    return this.calls.filter((call) => call.method === 'POST' && call.uri === '/tools/find').map((call) => call.body as FindCallBody);
  }

  /**
   * The calls in short: "find Study {"0020,000d":"1.2"} All:a under:P" for a /tools/find
   * (its level, its constraints, its label filter and its ParentPatient), "GET /uri" for
   * the others.
   */
  summary(): string[] {
    return this.calls.map((call) => {
      if (call.method !== 'POST' || call.uri !== '/tools/find') return `${call.method} ${call.uri}`;
      const body = call.body as FindCallBody;
      const labels = body.Labels === undefined ? '' : ` ${body.LabelsConstraint ?? 'All'}:${body.Labels.join(',')}`;
      const parent = body.ParentPatient === undefined ? '' : ` under:${body.ParentPatient}`;
      return `find ${body.Level} ${JSON.stringify(body.Query)}${labels}${parent}`;
    });
  }

  /** Every value of every /tools/find constraint recorded, and each item of those that are lists. */
  constraintValues(): string[] {
    return this.finds().flatMap((body) =>
      Object.values(body.Query).flatMap((value) => (value.includes('\\') ? [value, ...value.split('\\')] : [value])),
    );
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  // -------------------------------------------------------------------------------------
  // The REST API.

  /** A C-STORE of this process begins writing into the patient (Orthanc id); it is in progress until endStore. */
  beginStore(patientId: string): void {
    this.storesInProgress.add(patientId);
    this.lastStoreBegun.set(patientId, ++this.storesBegun);
  }

  endStore(patientId: string): void {
    this.storesInProgress.delete(patientId);
  }

  private async serve<T>(call: RecordedCall, answer: () => T): Promise<T> {
    this.calls.push(call);
    this.whileAnswering?.(call);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.deferAnswers) await new Promise((resolve) => setImmediate(resolve));
      return answer();
    } finally {
      this.inFlight--;
    }
  }

  private get(uri: string): Buffer {
    const [path = '', search = ''] = uri.split('?');
    const short = search.split('&').includes('short');
    if (path === '/system') {
      const backend = this.databaseBackendPlugin === undefined ? {} : { DatabaseBackendPlugin: this.databaseBackendPlugin };
      return json({ Version: '1.12.9', ApiVersion: 27, Capabilities: { HasExtendedFind: this.hasExtendedFind }, ...backend });
    }
    if (path === '/modalities') return json(search === 'expand' ? this.modalities : Object.keys(this.modalities));
    if (path === '/tools/labels') {
      const inUse = Object.values(this.resources).flatMap((resources) => [...resources.values()].flatMap((resource) => [...resource.labels]));
      return json([...new Set(inUse)].sort());
    }
    const [, collection = '', id = '', sub, extra] = path.split('/');
    const level = LEVEL_OF_COLLECTION[collection];
    if (level === undefined || extra !== undefined) throw unknown(uri);
    const resource = this.require(level, id);
    if (sub === undefined) return json(this.describe(resource, short));
    if (sub === 'labels') return json([...resource.labels].sort());
    if (sub === 'tags' && level === 'Instance') {
      if (!short) throw badRequest('the fake serves /instances/{id}/tags?short only');
      return json(resource.file);
    }
    const childLevel = LEVEL_OF_COLLECTION[sub];
    if (childLevel !== undefined && depth(childLevel) > depth(level)) {
      return json(descendantsAt(resource, childLevel).map((child) => this.describe(child, short)));
    }
    const parentLevel = LEVEL_OF_SINGULAR[sub];
    if (parentLevel !== undefined && depth(parentLevel) < depth(level)) return json(this.describe(ancestorAt(resource, parentLevel), short));
    throw unknown(uri);
  }

  private post(uri: string, body: string): Buffer {
    if (uri === '/tools/find') return json(this.find(parseJson(body)));
    if (uri === '/tools/lookup') return json(this.lookup(body));
    const store = /^\/modalities\/([^/]+)\/store$/.exec(uri);
    if (store !== null) {
      const modality = decodeURIComponent(store[1]!);
      if (!(modality in this.modalities)) throw unknown(uri);
      this.jobs.push({ modality, body: parseJson(body) });
      const job = `job-${this.jobs.length}`;
      return json({ ID: job, Path: `/jobs/${job}` });
    }
    const reconstruct = /^\/(patients|studies|series|instances)\/([^/]+)\/reconstruct$/.exec(uri);
    if (reconstruct !== null) {
      const resource = this.require(LEVEL_OF_COLLECTION[reconstruct[1]!]!, reconstruct[2]!);
      this.reconstruct(resource);
      this.reconstructions.push({ level: resource.level, id: resource.id, body: body === '' ? undefined : parseJson(body) });
      return json({});
    }
    throw unknown(uri);
  }

  private put(uri: string): Buffer {
    const { resource, label } = this.labelRoute(uri);
    resource.labels.add(label);
    return Buffer.from('');
  }

  private delete(uri: string): void {
    if (/\/labels\//.test(uri)) {
      const { resource, label } = this.labelRoute(uri);
      resource.labels.delete(label);
      return;
    }
    const [, collection = '', id = '', extra] = uri.split('/');
    const level = LEVEL_OF_COLLECTION[collection];
    if (level === undefined || extra !== undefined) throw unknown(uri);
    this.remove(level, id);
  }

  private labelRoute(uri: string): { resource: Resource; label: string } {
    const [, collection = '', id = '', labels, label, extra] = uri.split('/');
    const level = LEVEL_OF_COLLECTION[collection];
    if (level === undefined || labels !== 'labels' || label === undefined || extra !== undefined) throw unknown(uri);
    const resource = this.require(level, id);
    if (!isValidLabel(label)) throw outOfRange(`a label must be 1 to 64 of [A-Za-z0-9_-], got "${label}"`);
    return { resource, label };
  }

  /** /tools/lookup: the resources whose identifier equals the body, after NormalizeIdentifier. */
  private lookup(value: string): { ID: string; Path: string; Type: ResourceLevel }[] {
    const wanted = normalizeIdentifier(value);
    const keys: Record<ResourceLevel, string> = {
      Patient: TAG.PatientID,
      Study: TAG.StudyInstanceUID,
      Series: TAG.SeriesInstanceUID,
      Instance: TAG.SOPInstanceUID,
    };
    return LEVELS.flatMap((level) =>
      [...this.resources[level].values()]
        .filter((resource) => normalizeIdentifier(resource.mainTags[keys[level]] ?? '') === wanted)
        .map((resource) => ({ ID: resource.id, Path: `/${COLLECTION[level]}/${resource.id}`, Type: level })),
    );
  }

  private find(request: unknown): unknown[] {
    if (typeof request !== 'object' || request === null) throw badRequest('/tools/find needs a JSON object');
    const body = request as FindCallBody;
    const level = LEVELS.find((one) => one.toLowerCase() === String(body.Level).toLowerCase());
    if (level === undefined) throw badRequest(`unknown Level ${JSON.stringify(body.Level)}`);
    if (typeof body.Query !== 'object' || body.Query === null) throw badRequest('/tools/find needs a Query');
    const caseSensitive = body.CaseSensitive ?? false;
    const constraints = Object.entries(body.Query).map(([key, value]) => {
      if (typeof value !== 'string') throw badRequest(`the constraint on ${key} is not a string`);
      const tag = hexOf(key);
      if (tag in COUNTER_LEVEL) throw badRequest(`constraints on the computed tag ${tag} are not modelled`);
      if (!value.includes('\\') && /[*?]/.test(value) && !WILDCARD_VRS.has(vrOf(tag))) throw outOfRange(`Wildcards are not allowed on tag ${tag}`);
      return { tag, value };
    });
    const labels = body.Labels ?? [];
    const labelsConstraint = body.LabelsConstraint ?? 'All';

    const parent = body.ParentPatient === undefined ? undefined : this.resources.Patient.get(body.ParentPatient);
    let matches = [...this.resources[level].values()].filter(
      (resource) =>
        (body.ParentPatient === undefined || (parent !== undefined && resource.level !== 'Patient' && ancestorAt(resource, 'Patient') === parent)) &&
        constraints.every(({ tag, value }) => value === '' || this.matches(resource, tag, value, caseSensitive)) &&
        carries(resource, labels, labelsConstraint),
    );
    if (body.Limit !== undefined || body.Since !== undefined) {
      const since = body.Since ?? 0;
      matches = matches.slice(since, body.Limit ? since + body.Limit : undefined);
    }

    const requested = (body.RequestedTags ?? []).map(hexOf);
    const short = body.Short === true;
    if (body.ResponseContent !== undefined) {
      return matches.map((resource) => ({
        ID: resource.id,
        Type: resource.level,
        ...(body.ResponseContent!.includes('RequestedTags') && { RequestedTags: this.requestedTags(resource, requested, short) }),
        ...(body.ResponseContent!.includes('Labels') && { Labels: [...resource.labels].sort() }),
      }));
    }
    if (body.Expand !== true) return matches.map((resource) => resource.id);
    return matches.map((resource) => ({
      ...this.describe(resource, short),
      ...(requested.length > 0 && { RequestedTags: this.requestedTags(resource, requested, short) }),
    }));
  }

  private matches(resource: Resource, tag: string, pattern: string, caseSensitive: boolean): boolean {
    if (LEVELS.some((level) => depth(level) > depth(resource.level) && MAIN_TAGS[level].includes(tag))) return false;
    const stored = this.valueOf(resource, tag);
    if (stored === undefined) return false;
    const normalize = caseSensitive ? (text: string) => text : (text: string) => text.toUpperCase();
    const vr = vrOf(tag);
    if ((vr === 'DA' || vr === 'TM' || vr === 'DT') && pattern.includes('-')) {
      const [lower = '', upper = ''] = pattern.split('-');
      return (lower === '' || stored >= lower) && (upper === '' || stored <= upper);
    }
    if (pattern.includes('\\')) return pattern.split('\\').map(normalize).includes(normalize(stored));
    if (WILDCARD_VRS.has(vr) && /[*?]/.test(pattern)) return wildcard(normalize(pattern)).test(normalize(stored));
    return normalize(stored) === normalize(pattern);
  }

  /** A tag's value for a resource, as /tools/find reads it (see the header). */
  private valueOf(resource: Resource, tag: string): string | undefined {
    const level = storageLevel(tag, resource.level);
    if (level === 'Patient' && resource.level !== 'Patient') return ancestorAt(resource, 'Study').patientCopy[tag];
    if (level !== undefined) return ancestorAt(resource, level).mainTags[tag];
    if (tag in COUNTER_LEVEL) return COUNTER_LEVEL[tag] === resource.level ? this.counter(resource, tag) : undefined;
    return descendantsAt(resource, 'Instance')[0]?.file[tag];
  }

  private counter(resource: Resource, tag: string): string {
    const distinct = (values: (string | undefined)[]) =>
      [...new Set(values.filter((value): value is string => value !== undefined && value !== ''))].sort().join('\\');
    switch (tag) {
      case Tags.ModalitiesInStudy:
        return distinct(resource.children.map((series) => series.mainTags[TAG.Modality]));
      case Tags.SOPClassesInStudy:
        return distinct(descendantsAt(resource, 'Instance').map((instance) => instance.file[TAG.SOPClassUID]));
      case Tags.NumberOfPatientRelatedStudies:
        return String(resource.children.length);
      case Tags.NumberOfPatientRelatedSeries:
      case Tags.NumberOfStudyRelatedSeries:
        return String(descendantsAt(resource, 'Series').length);
      default:
        return String(descendantsAt(resource, 'Instance').length);
    }
  }

  private requestedTags(resource: Resource, tags: string[], short: boolean): Record<string, string> {
    const values: Record<string, string> = {};
    for (const tag of tags) {
      const value = this.valueOf(resource, tag);
      if (value !== undefined) values[short ? tag : (NAME_OF[tag] ?? tag)] = value;
    }
    return values;
  }

  /** With LimitToThisLevelMainDicomTags: the resource's main tags from its first remaining instance. */
  private reconstruct(resource: Resource): void {
    const first = descendantsAt(resource, 'Instance')[0];
    if (first === undefined) return;
    resource.mainTags = pick(first.file, MAIN_TAGS[resource.level]);
    if (resource.level === 'Study') resource.patientCopy = pick(first.file, MAIN_TAGS.Patient);
  }

  /** The resource's JSON, as GET /{level}/{id} answers it (the fields the plugin reads, and a few more). */
  private describe(resource: Resource, short: boolean): Record<string, unknown> {
    const format = (tags: Record<string, string>) =>
      Object.fromEntries(Object.entries(tags).map(([tag, value]) => [short ? tag : (NAME_OF[tag] ?? tag), value]));
    const childIds = resource.children.map((child) => child.id);
    const description: Record<string, unknown> = {
      ID: resource.id,
      Type: resource.level,
      MainDicomTags: format(resource.mainTags),
      Labels: [...resource.labels].sort(),
    };
    switch (resource.level) {
      case 'Patient':
        return { ...description, Studies: childIds };
      case 'Study':
        return { ...description, PatientMainDicomTags: format(resource.patientCopy), ParentPatient: resource.parent!.id, Series: childIds };
      case 'Series':
        return { ...description, ParentStudy: resource.parent!.id, Instances: childIds };
      case 'Instance':
        return { ...description, ParentSeries: resource.parent!.id };
    }
  }

  private require(level: ResourceLevel, id: string): Resource {
    const resource = this.resources[level].get(id);
    if (resource === undefined) throw unknown(`/${COLLECTION[level]}/${id}`);
    return resource;
  }
}

/** A /tools/find body as the plugin sends it: paged, and in its cheapest form when it can. */
export interface FindCallBody extends FindRequest {
  ResponseContent?: string[];
  Limit?: number;
  Since?: number;
}

/** The level whose main tags hold `tag` for a resource at `level` (that level or above), if any. */
function storageLevel(tag: string, level: ResourceLevel): ResourceLevel | undefined {
  return LEVELS.find((one) => depth(one) <= depth(level) && MAIN_TAGS[one].includes(tag));
}

function ancestorAt(resource: Resource, level: ResourceLevel): Resource {
  let current = resource;
  while (current.level !== level) current = current.parent!;
  return current;
}

function descendantsAt(resource: Resource, level: ResourceLevel): Resource[] {
  return resource.level === level ? [resource] : resource.children.flatMap((child) => descendantsAt(child, level));
}

function carries(resource: Resource, labels: string[], constraint: 'All' | 'Any' | 'None'): boolean {
  if (labels.length === 0) return true;
  const carried = labels.filter((label) => isValidLabel(label) && resource.labels.has(label)).length;
  return constraint === 'All' ? carried === labels.length : constraint === 'Any' ? carried > 0 : carried === 0;
}

/** ServerToolbox::NormalizeIdentifier: ASCII printable characters only, "%" and "_" as spaces, upper case, trimmed. */
export function normalizeIdentifier(value: string): string {
  let kept = '';
  for (const character of value) {
    const code = character.charCodeAt(0);
    if (character === '%' || character === '_') kept += ' ';
    else if (character.length === 1 && code < 0x80 && code >= 0x20 && code !== 0x7f) kept += character;
  }
  return kept.toUpperCase().trim();
}

function wildcard(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 's');
}

function hexOf(key: string): string {
  if (/^[0-9a-fA-F]{4},[0-9a-fA-F]{4}$/.test(key)) return key.toLowerCase();
  const tag = (TAG as Record<string, string>)[key];
  if (tag === undefined) throw badRequest(`unknown tag "${key}"`);
  return tag;
}

function toHex(named: InstanceTags): Record<string, string> {
  return Object.fromEntries(Object.entries(named).map(([key, value]) => [hexOf(key), value]));
}

function pick(tags: Record<string, string>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((key) => tags[key] !== undefined).map((key) => [key, tags[key]!]));
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('the body is not JSON');
  }
}

/** A recorded body: parsed when it is a JSON object or array, else the text (e.g. /tools/lookup's raw value). */
function parseBody(body: Buffer | string): unknown {
  const text = body.toString();
  if (!/^\s*[[{]/.test(text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
