// Who may talk to a tenant DICOM server: the same rules as Orthanc core's
// OrthancApplicationEntityFilter (OrthancServer/Sources/main.cpp), applied to the
// modalities that Orthanc's REST API lists.
import { isSameAet, type DicomOptions } from './configuration.js';

export type DicomRequestType = 'Echo' | 'Find' | 'FindWorklist' | 'Get' | 'Move' | 'Store' | 'NAction' | 'NEventReport';

export interface RemoteModality {
  name: string;
  aet: string;
  host: string;
  port: number;
  allowed: Record<DicomRequestType, boolean>;
}

/** The options of Orthanc's configuration that decide who may talk to a DICOM server. */
export type AccessOptions = Pick<
  DicomOptions,
  | 'strictAetComparison'
  | 'checkModalityHost'
  | 'alwaysAllowEcho'
  | 'alwaysAllowFind'
  | 'alwaysAllowFindWorklist'
  | 'alwaysAllowGet'
  | 'alwaysAllowMove'
  | 'alwaysAllowStore'
>;

export interface AccessDecision {
  allowed: boolean;
  /** A log line when refused. */
  reason?: string;
}

export interface Caller {
  aet: string;
  ip: string;
  calledAet: string;
}

// Keys written by RemoteModalityParameters::Serialize. N-EVENT-REPORT is "AllowEventReport" there.
const ALLOW_KEYS: Record<DicomRequestType, string> = {
  Echo: 'AllowEcho',
  Find: 'AllowFind',
  FindWorklist: 'AllowFindWorklist',
  Get: 'AllowGet',
  Move: 'AllowMove',
  Store: 'AllowStore',
  NAction: 'AllowNAction',
  NEventReport: 'AllowEventReport',
};

const REQUEST_TYPES = Object.keys(ALLOW_KEYS) as DicomRequestType[];

// As Orthanc's EnumerationToString(DicomRequestType), for log lines.
const REQUEST_LABELS: Record<DicomRequestType, string> = {
  Echo: 'Echo',
  Find: 'Find',
  FindWorklist: 'FindWorklist',
  Get: 'Get',
  Move: 'Move',
  Store: 'Store',
  NAction: 'N-ACTION',
  NEventReport: 'N-EVENT-REPORT',
};

const ALWAYS_ALLOW_OPTIONS: Partial<Record<DicomRequestType, keyof AccessOptions>> = {
  Echo: 'alwaysAllowEcho',
  Find: 'alwaysAllowFind',
  FindWorklist: 'alwaysAllowFindWorklist',
  Get: 'alwaysAllowGet',
  Move: 'alwaysAllowMove',
  Store: 'alwaysAllowStore',
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readString(source: Record<string, unknown>, key: string, name: string): string {
  const value = source[key];
  if (typeof value !== 'string') {
    throw new Error(`Modality "${name}": "${key}" must be a string`);
  }
  return value;
}

function readOptionalBoolean(source: Record<string, unknown>, key: string, name: string): boolean | undefined {
  const value = source[key];
  if (value !== undefined && typeof value !== 'boolean') {
    throw new Error(`Modality "${name}": "${key}" must be a boolean`);
  }
  return value;
}

function readPort(value: unknown, name: string): number {
  // Like RemoteModalityParameters' ReadPortNumber: an integer or a string holding one.
  const port = typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port >= 65535) {
    throw new Error(`Modality "${name}": bad port ${JSON.stringify(value)}`);
  }
  return port;
}

function allowAll(): Record<DicomRequestType, boolean> {
  return Object.fromEntries(REQUEST_TYPES.map((type) => [type, true])) as Record<DicomRequestType, boolean>;
}

// Mirrors RemoteModalityParameters::Unserialize: missing Allow* flags default to true, and
// "AllowStorageCommitment" sets both N-ACTION and N-EVENT-REPORT.
function parseModality(name: string, serialized: unknown): RemoteModality {
  const allowed = allowAll();

  if (Array.isArray(serialized)) {
    const [aet, host, port] = serialized as unknown[];
    if (typeof aet !== 'string' || typeof host !== 'string' || (serialized.length !== 3 && serialized.length !== 4)) {
      throw new Error(`Modality "${name}": bad array format`);
    }
    return { name, aet, host, port: readPort(port, name), allowed };
  }

  if (!isRecord(serialized)) {
    throw new Error(`Modality "${name}": expected an object`);
  }
  for (const type of REQUEST_TYPES) {
    allowed[type] = readOptionalBoolean(serialized, ALLOW_KEYS[type], name) ?? allowed[type];
  }
  const storageCommitment = readOptionalBoolean(serialized, 'AllowStorageCommitment', name);
  if (storageCommitment !== undefined) {
    allowed.NAction = storageCommitment;
    allowed.NEventReport = storageCommitment;
  }
  return {
    name,
    aet: readString(serialized, 'AET', name),
    host: readString(serialized, 'Host', name),
    port: readPort(serialized['Port'], name),
    allowed,
  };
}

// std::map<std::string, ...> order: bytewise on UTF-8, unlike JS's UTF-16 comparison.
function compareAsStdString(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The answer of `GET /modalities?expand`, sorted by symbolic name as in Orthanc's std::map. */
export function parseModalities(expanded: unknown): RemoteModality[] {
  if (!isRecord(expanded)) {
    throw new Error('Expected the JSON object of GET /modalities?expand');
  }
  return Object.entries(expanded)
    .map(([name, serialized]) => parseModality(name, serialized))
    .sort((a, b) => compareAsStdString(a.name, b.name));
}

function modalitiesWithAet(options: AccessOptions, modalities: RemoteModality[], aet: string): RemoteModality[] {
  return modalities.filter((modality) => isSameAet(options.strictAetComparison, aet, modality.aet));
}

function isAnyRequestAlwaysAllowed(options: AccessOptions): boolean {
  return (
    options.alwaysAllowEcho ||
    options.alwaysAllowFind ||
    options.alwaysAllowFindWorklist ||
    options.alwaysAllowGet ||
    options.alwaysAllowMove ||
    options.alwaysAllowStore
  );
}

const ALLOWED: AccessDecision = { allowed: true };

function refused(reason: string): AccessDecision {
  return { allowed: false, reason };
}

/** As OrthancApplicationEntityFilter::IsAllowedConnection (and OrthancConfiguration::IsKnownAETitle). */
export function decideConnection(options: AccessOptions, modalities: RemoteModality[], caller: Caller): AccessDecision {
  if (isAnyRequestAlwaysAllowed(options)) {
    return ALLOWED;
  }
  // The core only looks at the first modality with this AET, in the order of symbolic names.
  const [modality] = modalitiesWithAet(options, modalities, caller.aet);
  if (modality === undefined) {
    return refused(
      `Modality "${caller.aet}" on IP ${caller.ip} is not listed in the "DicomModalities" configuration option ` +
        `(connection to AET ${caller.calledAet} refused)`,
    );
  }
  if (!options.checkModalityHost || caller.ip === modality.host) {
    return ALLOWED;
  }
  return refused(
    `Forbidding access from AET "${caller.aet}" to AET ${caller.calledAet} given its hostname (${caller.ip}) ` +
      `does not match the "DicomModalities" configuration option (${modality.host} was expected)`,
  );
}

/** As OrthancApplicationEntityFilter::IsAllowedRequest. */
export function decideRequest(
  options: AccessOptions,
  modalities: RemoteModality[],
  caller: Caller,
  type: DicomRequestType,
): AccessDecision {
  const alwaysAllowOption = ALWAYS_ALLOW_OPTIONS[type];
  if (alwaysAllowOption !== undefined && options[alwaysAllowOption]) {
    return ALLOWED;
  }

  const rejected = `DICOM authorization rejected for AET ${caller.aet} on IP ${caller.ip} calling AET ${caller.calledAet}`;
  const notAllowed = `The DICOM command ${REQUEST_LABELS[type]} is not allowed for this modality according to configuration option "DicomModalities"`;
  const candidates = modalitiesWithAet(options, modalities, caller.aet);
  const [single] = candidates;

  if (single === undefined) {
    return refused(`${rejected}: This AET is not listed in configuration option "DicomModalities"`);
  }

  if (candidates.length === 1) {
    if (options.checkModalityHost && caller.ip !== single.host) {
      return refused(
        `${rejected}: Its IP address should be ${single.host} according to configuration option "DicomModalities"`,
      );
    }
    return single.allowed[type] ? ALLOWED : refused(`${rejected}: ${notAllowed}`);
  }

  // Several modalities share this AET: a modality with this IP that allows the request is
  // enough (with the host check), else the request must be allowed for all of them,
  // whatever the IP (sic, as in the core).
  if (options.checkModalityHost && candidates.some((m) => m.allowed[type] && m.host === caller.ip)) {
    return ALLOWED;
  }
  if (candidates.every((m) => m.allowed[type])) {
    return ALLOWED;
  }
  const which = options.checkModalityHost ? 'allowed for none of them matching the IP' : 'not allowed for all of them';
  return refused(
    `${rejected}: ${notAllowed}; ${candidates.length} modalities found with this AET in configuration option ` +
      `"DicomModalities", but the operation is ${which}`,
  );
}

/**
 * A tenant's own access list ("AllowedCallers": modality names), checked before the
 * core's rules and whatever DicomAlwaysAllow* say. The host is checked as
 * DicomCheckModalityHost would check it.
 */
export function decideAllowedCaller(
  options: Pick<AccessOptions, 'strictAetComparison' | 'checkModalityHost'>,
  modalities: RemoteModality[],
  caller: Caller,
  allowedCallers: readonly string[] | undefined,
): AccessDecision {
  if (allowedCallers === undefined) return ALLOWED;
  const listed = modalities.filter(
    (modality) => allowedCallers.includes(modality.name) && isSameAet(options.strictAetComparison, modality.aet, caller.aet),
  );
  if (listed.length === 0) {
    return refused(
      `AET "${caller.aet}" on IP ${caller.ip} is not one of the AllowedCallers of AET ${caller.calledAet} (${allowedCallers.join(', ')})`,
    );
  }
  if (options.checkModalityHost && !listed.some((modality) => modality.host === caller.ip)) {
    return refused(
      `AET "${caller.aet}" on IP ${caller.ip} is one of the AllowedCallers of AET ${caller.calledAet}, but from another host ` +
        `(${listed.map((modality) => modality.host).join(', ')} expected, DicomCheckModalityHost is true)`,
    );
  }
  return ALLOWED;
}
