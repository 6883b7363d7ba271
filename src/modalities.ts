// Orthanc's DicomModalities as its REST API lists them (`GET /modalities?expand`, which
// also holds the modalities added at run time), and the one rule that finds "the
// modality of an AET": the first one in the order of Orthanc's std::map of symbolic
// names, compared as StrictAetComparison says.
import type { DicomRequestType, Remembered } from './bridge.js';
import { isSameAet } from './configuration.js';
import type { Handler } from './handler.js';
import { isJsonObject } from './json.js';
import type { Orthanc } from './orthanc.js';

export type { DicomRequestType } from './bridge.js';

export interface RemoteModality {
  name: string;
  aet: string;
  host: string;
  port: number;
  allowed: Record<DicomRequestType, boolean>;
  allowTranscoding: boolean;
  /** As Orthanc serialises it (RemoteModalityParameters): what the native shim connects with. */
  serialized: Record<string, unknown>;
}

export const MODALITIES_URI = '/modalities?expand';

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

/** The modalities as Orthanc has them now, and the condition under which a decision on them holds. */
export async function readModalities(orthanc: Orthanc): Promise<{ modalities: RemoteModality[]; whileUnchanged: Remembered<unknown>['whileUnchanged'] }> {
  const content = await orthanc.getText(MODALITIES_URI);
  return { modalities: parseModalities(JSON.parse(content)), whileUnchanged: { uri: MODALITIES_URI, content, modalities: true } };
}

/** The answer of `GET /modalities?expand`, sorted by symbolic name as in Orthanc's std::map. */
export function parseModalities(expanded: unknown): RemoteModality[] {
  if (!isJsonObject(expanded)) {
    throw new Error('Expected the JSON object of GET /modalities?expand');
  }
  return Object.entries(expanded)
    .map(([name, serialized]) => parseModality(name, serialized))
    .sort((a, b) => compareAsStdString(a.name, b.name));
}

/** As OrthancConfiguration::LookupDicomModalityUsingAETitle: the first modality with this AET. */
export function firstModalityWithAet(modalities: RemoteModality[], aet: string, strictAetComparison: boolean): RemoteModality | undefined {
  return modalities.find((modality) => isSameAet(strictAetComparison, modality.aet, aet));
}

export const sameAet: Handler<'sameAet'> = (args, { tenants }) =>
  isSameAet(tenants.dicom.strictAetComparison, args.first, args.second);

export const lookupModality: Handler<'lookupModality'> = async (args, { orthanc, tenants }) => {
  const { modalities } = await readModalities(orthanc);
  return firstModalityWithAet(modalities, args.aet, tenants.dicom.strictAetComparison)?.serialized ?? null;
};

// std::map<std::string, ...> order: bytewise on UTF-8, unlike JS's UTF-16 comparison.
function compareAsStdString(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// Mirrors RemoteModalityParameters::Unserialize: missing Allow* flags default to true, and
// "AllowStorageCommitment" sets both N-ACTION and N-EVENT-REPORT.
function parseModality(name: string, serialized: unknown): RemoteModality {
  const allowed = Object.fromEntries(REQUEST_TYPES.map((type) => [type, true])) as Record<DicomRequestType, boolean>;

  if (Array.isArray(serialized)) {
    const [aet, host, port] = serialized as unknown[];
    if (typeof aet !== 'string' || typeof host !== 'string' || (serialized.length !== 3 && serialized.length !== 4)) {
      throw new Error(`Modality "${name}": bad array format`);
    }
    const portNumber = readPort(port, name);
    return { name, aet, host, port: portNumber, allowed, allowTranscoding: true, serialized: { AET: aet, Host: host, Port: portNumber } };
  }

  if (!isJsonObject(serialized)) {
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
    allowTranscoding: readOptionalBoolean(serialized, 'AllowTranscoding', name) ?? true,
    serialized,
  };
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
