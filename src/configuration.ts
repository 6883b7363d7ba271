// Reads the "MultitenantDicom" section of Orthanc's configuration (with the same
// semantics as the stock C++ MultitenantDicom plugin) and the global DICOM options
// the tenants' servers share with Orthanc's own DICOM server.

import type { ErrorObject } from 'ajv';
import validateSection from '../build/generated/configuration-validator.mjs';
import validateServer from '../build/generated/server-validator.mjs';
import schema from '../schemas/multitenant-dicom.schema.json' with { type: 'json' };
import { LEVELS, type ResourceLevel } from './dicom.js';
import { isJsonObject, type JsonObject } from './json.js';

export type { ResourceLevel } from './dicom.js';
export type LabelsConstraint = 'All' | 'Any' | 'None';

export interface TenantConfig {
  /** Position of the server in "MultitenantDicom.Servers"; for a tenant added through REST, a number after them. */
  index: number;
  /** Where it is defined: Orthanc's configuration, or PUT /plugins/multitenant-dicom/tenants/{AET}. */
  origin?: 'configuration' | 'rest';
  aet: string;
  port: number;
  labels: string[];
  labelsConstraint: LabelsConstraint;
  /** In the canonical order Patient, Study, Series, Instance. */
  labelsStoreLevels: ResourceLevel[];
  foreignInstances: 'Reject' | 'Share';
  /** Modality names; undefined: no per-tenant restriction. */
  allowedCallers?: string[];
  allowedMoveDestinations?: string[];
  /** DICOM TLS of its port (the entry's DicomTls* keys over Orthanc's); absent: plaintext. */
  tls?: TlsOptions;
  /** The certificate its C-MOVE sub-operations present to a destination with UseDicomTls; absent: none configured. */
  outgoingTls?: TlsOptions;
}

/** Orthanc's DicomTls* options, as they apply to one tenant. */
export interface TlsOptions {
  certificate: string; // "" when set nowhere (a tenant with TLS enabled then fails to start, saying so)
  privateKey: string;
  trustedCertificates: string;
  remoteCertificateRequired: boolean;
  minimumVersion: number;
  ciphers: string[];
}

/** Orthanc's global DicomTls* options ("DicomTlsEnabled" and the others), as the core reads them. */
export interface GlobalTlsOptions extends TlsOptions {
  enabled: boolean;
}

/** Orthanc's global DICOM options, with the defaults of the Orthanc core. */
export interface DicomOptions {
  dicomPort: number;
  httpPort: number;
  strictAetComparison: boolean;
  checkModalityHost: boolean;
  checkCalledAet: boolean;
  scpTimeoutSeconds: number;
  threadsCount: number;
  maximumPduLength: number;
  synchronousCMove: boolean;
  alwaysAllowEcho: boolean;
  alwaysAllowFind: boolean;
  alwaysAllowFindWorklist: boolean;
  alwaysAllowGet: boolean;
  alwaysAllowMove: boolean;
  alwaysAllowStore: boolean;
  caseSensitivePN: boolean;     // "CaseSensitivePN", false
  limitFindResults: number;     // "LimitFindResults", 0 (no limit)
  limitFindInstances: number;   // "LimitFindInstances", 0 (no limit)
  transcodeDicomProtocol: boolean; // "TranscodeDicomProtocol", true
  scuTimeoutSeconds: number;    // "DicomScuTimeout", 10
  overwriteInstances: boolean;  // "OverwriteInstances", false
  tls: GlobalTlsOptions;        // "DicomTlsEnabled", "DicomTlsCertificate", ...
}

/** "AuditLog" of the section: where the audit trail of the tenants' DICOM operations goes. */
export interface AuditLogConfig {
  path: string;
}

export interface PluginConfiguration {
  /** Empty when the section, its "Servers" or their list is missing: nothing starts. */
  servers: TenantConfig[];
  /** Absent: no audit trail. */
  auditLog?: AuditLogConfig;
  /** "Metrics": {"Enabled"}, else Orthanc's "MetricsEnabled" (true unless set). */
  metricsEnabled: boolean;
  dicom: DicomOptions;
  /** One line per ignored unknown key, for the caller to log. */
  warnings: string[];
  /** Whether Orthanc's configuration has a "MultitenantDicom" section at all. */
  sectionPresent: boolean;
}

/** A bad configuration; the message is one line naming the server, the key and the bad value. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** A server whose AET or port another tenant (or Orthanc itself) already uses. */
export class ConfigurationConflict extends ConfigurationError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationConflict';
  }
}

const SECTION = 'MultitenantDicom';
const SERVERS = 'Servers';
const AUDIT_LOG = 'AuditLog';
const METRICS = 'Metrics';
const AET = 'AET';
const LABELS_STORE_LEVELS = 'LabelsStoreLevels';
/** Schema annotation holding the human wording of what a value must be. */
const EXPECTED = 'x-expected';

const serverSchema = schema.definitions.server;
const SECTION_KEYS = Object.keys(schema.properties);
const SERVER_KEYS = Object.keys(serverSchema.properties);
/** The keys of the section whose value is an object, and that object's keys. */
const OBJECT_KEYS: Record<string, string[]> = {
  [AUDIT_LOG]: Object.keys(schema.properties.AuditLog.properties),
  [METRICS]: Object.keys(schema.properties.Metrics.properties),
};

/** A server of the section once the schema has accepted it (and filled in its defaults). */
interface ValidServer {
  AET: string;
  Port: number;
  Labels: string[];
  LabelsConstraint: LabelsConstraint;
  LabelsStoreLevels: string[];
  ForeignInstances: 'Reject' | 'Share';
  AllowedCallers?: string[];
  AllowedMoveDestinations?: string[];
  DicomTlsEnabled?: boolean;
  DicomTlsCertificate?: string;
  DicomTlsPrivateKey?: string;
  DicomTlsTrustedCertificates?: string;
  DicomTlsRemoteCertificateRequired?: boolean;
  DicomTlsMinimumProtocolVersion?: number;
  DicomTlsCiphersAccepted?: string[];
}


// The schema, compiled by ajv at build time (scripts/compile-schema.mjs) with allErrors
// (ajv's own order is not the one reported, see throwFirst) and verbose (errors carry the
// bad value and their schema node, whose "x-expected" words the message).

// Orthanc upper-cases (ASCII only) then accepts these spellings (StringToResourceType
// in OrthancFramework/Sources/Enumerations.cpp); the schema's pattern admits the same.
const RESOURCE_LEVEL_SPELLINGS: Readonly<Record<string, ResourceLevel>> = {
  PATIENT: 'Patient',
  PATIENTS: 'Patient',
  STUDY: 'Study',
  STUDIES: 'Study',
  SERIES: 'Series',
  INSTANCE: 'Instance',
  INSTANCES: 'Instance',
  IMAGE: 'Instance',
  IMAGES: 'Instance',
};

/** Orthanc's StringToResourceType: the same spellings, ASCII case-insensitive. */
export function parseResourceLevel(spelling: string): ResourceLevel | undefined {
  return RESOURCE_LEVEL_SPELLINGS[asciiUpperCase(spelling)];
}

/** Orthanc's IsSameAETitle: exact when strict, else ASCII case-insensitive. */
export function isSameAet(strict: boolean, a: string, b: string): boolean {
  return strict ? a === b : asciiLowerCase(a) === asciiLowerCase(b);
}

/** A global option of the wrong JSON type falls back to its default: Orthanc refuses such a configuration before plugins run. */
export function readDicomOptions(orthancConfiguration: Record<string, unknown>): DicomOptions {
  const config = orthancConfiguration;
  return {
    dicomPort: readUnsigned(config, 'DicomPort', 4242),
    httpPort: readUnsigned(config, 'HttpPort', 8042),
    strictAetComparison: readBoolean(config, 'StrictAetComparison', false),
    checkModalityHost: readBoolean(config, 'DicomCheckModalityHost', false),
    checkCalledAet: readBoolean(config, 'DicomCheckCalledAet', false),
    scpTimeoutSeconds: readUnsigned(config, 'DicomScpTimeout', 30),
    threadsCount: readUnsigned(config, 'DicomThreadsCount', 4),
    maximumPduLength: readUnsigned(config, 'MaximumPduLength', 16384),
    synchronousCMove: readBoolean(config, 'SynchronousCMove', true),
    alwaysAllowEcho: readBoolean(config, 'DicomAlwaysAllowEcho', true),
    alwaysAllowFind: readBoolean(config, 'DicomAlwaysAllowFind', false),
    alwaysAllowFindWorklist: readBoolean(config, 'DicomAlwaysAllowFindWorklist', false),
    alwaysAllowGet: readBoolean(config, 'DicomAlwaysAllowGet', false),
    alwaysAllowMove: readBoolean(config, 'DicomAlwaysAllowMove', false),
    alwaysAllowStore: readBoolean(config, 'DicomAlwaysAllowStore', true),
    caseSensitivePN: readBoolean(config, 'CaseSensitivePN', false),
    limitFindResults: readUnsigned(config, 'LimitFindResults', 0),
    limitFindInstances: readUnsigned(config, 'LimitFindInstances', 0),
    transcodeDicomProtocol: readBoolean(config, 'TranscodeDicomProtocol', true),
    scuTimeoutSeconds: readUnsigned(config, 'DicomScuTimeout', 10),
    overwriteInstances: readBoolean(config, 'OverwriteInstances', false),
    tls: {
      enabled: readBoolean(config, 'DicomTlsEnabled', false),
      certificate: readString(config, 'DicomTlsCertificate', ''),
      privateKey: readString(config, 'DicomTlsPrivateKey', ''),
      trustedCertificates: readString(config, 'DicomTlsTrustedCertificates', ''),
      remoteCertificateRequired: readBoolean(config, 'DicomTlsRemoteCertificateRequired', true),
      minimumVersion: readUnsigned(config, 'DicomTlsMinimumProtocolVersion', 0),
      ciphers: readStrings(config, 'DicomTlsCiphersAccepted'),
    },
  };
}

/**
 * Validates the "MultitenantDicom" section of Orthanc's whole configuration.
 * Throws a ConfigurationError for the first problem, in the order the servers appear.
 */
export function parseConfiguration(orthancConfiguration: unknown): PluginConfiguration {
  const configuration = isJsonObject(orthancConfiguration) ? orthancConfiguration : {};
  const dicom = readDicomOptions(configuration);
  const orthancMetricsEnabled = readBoolean(configuration, 'MetricsEnabled', true);
  if (!Object.hasOwn(configuration, SECTION)) {
    return { servers: [], dicom, metricsEnabled: orthancMetricsEnabled, warnings: [], sectionPresent: false };
  }

  // A copy, because ajv fills the schema's defaults into the data it validates.
  const section: unknown = structuredClone(configuration[SECTION]);
  const schemaErrors = validateSection(section) ? [] : (validateSection.errors ?? []);

  throwFirst(schemaErrors.filter((error) => locate(error).server === undefined && locate(error).object === undefined), SECTION);
  for (const object of Object.keys(OBJECT_KEYS)) {
    throwFirst(schemaErrors.filter((error) => locate(error).object === object), `${SECTION}.${object}`);
  }
  const rawAuditLog = (section as JsonObject)[AUDIT_LOG] as { Path: string } | undefined;
  const rawMetrics = (section as JsonObject)[METRICS] as { Enabled?: boolean } | undefined;
  // From here on the section is an object whose "Servers", if any, is an array.
  const rawServers = ((section as JsonObject)[SERVERS] ?? []) as unknown[];

  const servers: TenantConfig[] = [];
  for (const [index, rawServer] of rawServers.entries()) {
    const errors = schemaErrors.filter((error) => locate(error).server === index);
    // The AET names the server in messages only when it is itself valid.
    const aetIsValid = !errors.some((error) => [undefined, AET].includes(locate(error).key));
    throwFirst(errors, serverLocation(index, aetIsValid ? (rawServer as ValidServer).AET : undefined));
    servers.push(checkAgainstOthers(index, rawServer as ValidServer, servers, dicom, serverLocation(index, (rawServer as ValidServer).AET)));
  }

  const warnings = [
    ...unknownKeys(section as JsonObject, SECTION_KEYS).map((key) => `${SECTION}: unknown key ${json(key)} is ignored`),
    ...Object.entries(OBJECT_KEYS).flatMap(([object, keys]) =>
      unknownKeys(((section as JsonObject)[object] ?? {}) as JsonObject, keys).map(
        (key) => `${SECTION}.${object}: unknown key ${json(key)} is ignored`,
      ),
    ),
    ...servers.flatMap((server) =>
      unknownKeys(rawServers[server.index] as JsonObject, SERVER_KEYS).map(
        (key) => `${serverLocation(server.index, server.aet)}: unknown key ${json(key)} is ignored`,
      ),
    ),
  ];
  return {
    servers,
    ...(rawAuditLog !== undefined && { auditLog: { path: rawAuditLog.Path } }),
    metricsEnabled: rawMetrics?.Enabled ?? orthancMetricsEnabled,
    dicom,
    warnings,
    sectionPresent: true,
  };
}

/**
 * A tenant added through REST (PUT /plugins/multitenant-dicom/tenants/{AET}): its entry,
 * checked as a server of the section is, against the other tenants. Throws a
 * ConfigurationError naming the tenant, the key and what is expected, or a
 * ConfigurationConflict for an AET or a port already in use.
 */
export function parseTenantEntry(raw: unknown, index: number, others: TenantConfig[], dicom: DicomOptions): TenantConfig {
  const entry: unknown = structuredClone(raw);
  const aet = isJsonObject(entry) && typeof entry[AET] === 'string' ? entry[AET] : undefined;
  const errors = validateServer(entry) ? [] : (validateServer.errors ?? []);
  // In the section's terms (Servers/0/...), which throwFirst reads.
  const located = errors.map((error) => ({ ...error, instancePath: `/${SERVERS}/0${error.instancePath}` }));
  const aetIsValid = !located.some((error) => [undefined, AET].includes(locate(error).key));
  throwFirst(located, runtimeTenantLocation(aetIsValid ? aet : undefined));
  const tenant = checkAgainstOthers(index, entry as ValidServer, others, dicom, runtimeTenantLocation(aet));
  const unknown = unknownKeys(entry as JsonObject, SERVER_KEYS);
  if (unknown.length > 0) throw new ConfigurationError(`${runtimeTenantLocation(aet)}: unknown key ${json(unknown[0])}`);
  return { ...tenant, origin: 'rest' };
}

function runtimeTenantLocation(aet: string | undefined): string {
  return aet === undefined ? 'The tenant' : `Tenant ${json(aet)}`;
}

/** The checks a schema cannot express, against Orthanc and the servers before this one. */
function checkAgainstOthers(index: number, server: ValidServer, previous: TenantConfig[], dicom: DicomOptions, location: string): TenantConfig {
  const strict = dicom.strictAetComparison;

  const sameAet = previous.find((other) => isSameAet(strict, other.aet, server.AET));
  if (sameAet) {
    const rule = strict ? 'StrictAetComparison is true, so case matters' : 'StrictAetComparison is false, so case is ignored';
    conflict(`${location}: "AET" duplicates the AET of ${otherName(sameAet, '')}; AETs must be unique (${rule})`);
  }

  if (server.Port === dicom.dicomPort) {
    conflict(`${location}: "Port" ${server.Port} is Orthanc's own DicomPort`);
  }
  if (server.Port === dicom.httpPort) {
    conflict(`${location}: "Port" ${server.Port} is Orthanc's own HttpPort`);
  }
  const samePort = previous.find((other) => other.port === server.Port);
  if (samePort) {
    conflict(`${location}: "Port" ${server.Port} is already used by ${otherName(samePort, 'AET ')}`);
  }

  const levels = server.LabelsStoreLevels.map(toResourceLevel);
  if (new Set(levels).size !== levels.length) {
    // Exact duplicates are the schema's business; synonyms ("Study", "studies") are caught here.
    fail(`${location}: "${LABELS_STORE_LEVELS}" must be ${expectedOf(serverSchema.properties.LabelsStoreLevels)}, got ${json(server.LabelsStoreLevels)}`);
  }

  return {
    index,
    aet: server.AET,
    port: server.Port,
    labels: [...server.Labels],
    labelsConstraint: server.LabelsConstraint,
    labelsStoreLevels: LEVELS.filter((level) => levels.includes(level)),
    foreignInstances: server.ForeignInstances,
    ...(server.AllowedCallers && { allowedCallers: [...server.AllowedCallers] }),
    ...(server.AllowedMoveDestinations && { allowedMoveDestinations: [...server.AllowedMoveDestinations] }),
    ...tlsOf(server, dicom.tls),
  };
}

/** A tenant's TLS: each DicomTls* key of its entry, else Orthanc's. */
function tlsOf(server: ValidServer, global: GlobalTlsOptions): Pick<TenantConfig, 'tls' | 'outgoingTls'> {
  const options: TlsOptions = {
    certificate: server.DicomTlsCertificate ?? global.certificate,
    privateKey: server.DicomTlsPrivateKey ?? global.privateKey,
    trustedCertificates: server.DicomTlsTrustedCertificates ?? global.trustedCertificates,
    remoteCertificateRequired: server.DicomTlsRemoteCertificateRequired ?? global.remoteCertificateRequired,
    minimumVersion: server.DicomTlsMinimumProtocolVersion ?? global.minimumVersion,
    ciphers: server.DicomTlsCiphersAccepted ?? global.ciphers,
  };
  const enabled = server.DicomTlsEnabled ?? global.enabled;
  const outgoing = options.certificate !== '' && options.privateKey !== '' && options.trustedCertificates !== '';
  return { ...(enabled && { tls: options }), ...(outgoing && { outgoingTls: options }) };
}

function toResourceLevel(spelling: string): ResourceLevel {
  const level = parseResourceLevel(spelling);
  if (level === undefined) {
    throw new Error(`The schema accepted the resource level ${json(spelling)}, which has no canonical form`);
  }
  return level;
}

/**
 * Where a schema error is, inside the section: a key of the section, a server and maybe
 * one of its keys and an item of it, or a key of an object of the section ("AuditLog", "Metrics").
 */
interface Place {
  server?: number;
  /** A key of the section whose value is an object, when the error is inside that object. */
  object?: string;
  key?: string;
  item?: number;
}

function locate(error: ErrorObject): Place {
  const path = error.instancePath.split('/').slice(1).map(decodePointerSegment);
  if (error.keyword === 'required') {
    path.push(String(error.params.missingProperty));
  }
  const [first, second, third, fourth] = path;
  if (first === SERVERS && second !== undefined) {
    return { server: Number(second), key: third, item: fourth === undefined ? undefined : Number(fourth) };
  }
  if (first !== undefined && Object.hasOwn(OBJECT_KEYS, first) && second !== undefined) {
    return { object: first, key: second };
  }
  return { key: first };
}

/**
 * Reports the first of these errors (all about the value at `location`) in the order of
 * the schema's keys, so the AET comes first, and the items of an array before the array.
 */
function throwFirst(errors: ErrorObject[], location: string): void {
  const [first] = [...errors].sort(byPlaceInSchema);
  if (first === undefined) {
    return;
  }

  const { key, item } = locate(first);
  if (first.keyword === 'required') {
    const expected = expectedOf(first.parentSchema?.properties?.[key ?? '']);
    fail(`${location}: ${json(key)} is required (${expected})`);
  }
  const subject = key === undefined ? location : `${location}: ${json(key)}${item === undefined ? '' : `[${item}]`}`;
  fail(`${subject} must be ${expectedOf(first.parentSchema)}, got ${json(first.data)}`);
}

function byPlaceInSchema(a: ErrorObject, b: ErrorObject): number {
  const rank = (error: ErrorObject): [number, number] => {
    const { server, object, key, item } = locate(error);
    const keys = server !== undefined ? SERVER_KEYS : object !== undefined ? (OBJECT_KEYS[object] ?? []) : SECTION_KEYS;
    return [key === undefined ? -1 : keys.indexOf(key), item ?? Number.MAX_SAFE_INTEGER];
  };
  const [aKey, aItem] = rank(a);
  const [bKey, bItem] = rank(b);
  return aKey - bKey || aItem - bItem;
}

function expectedOf(schemaNode: unknown): string {
  const expected = isJsonObject(schemaNode) ? schemaNode[EXPECTED] : undefined;
  if (typeof expected !== 'string') {
    throw new Error(`The schema has no "${EXPECTED}" for ${json(schemaNode)}`);
  }
  return expected;
}

function serverLocation(index: number, aet?: string): string {
  const server = `${SECTION}.${SERVERS}[${index}]`;
  return aet === undefined ? server : `${server} (AET ${json(aet)})`;
}

/** How a tenant is named in every log line: its place in the configuration (or REST) and its AET. */
export function tenantName(tenant: Pick<TenantConfig, 'index' | 'aet' | 'origin'>): string {
  return tenant.origin === 'rest' ? `MultitenantDicom tenant ${json(tenant.aet)} (added through REST)` : serverLocation(tenant.index, tenant.aet);
}

function unknownKeys(object: JsonObject, knownKeys: string[]): string[] {
  return Object.keys(object).filter((key) => !knownKeys.includes(key));
}

function fail(message: string): never {
  throw new ConfigurationError(message);
}

function conflict(message: string): never {
  throw new ConfigurationConflict(message);
}

// How another tenant is named in a message about this one.
function otherName(other: TenantConfig, aetPrefix: string): string {
  return other.origin === 'rest' ? `tenant ${json(other.aet)} (added through REST)` : `${SERVERS}[${other.index}] (${aetPrefix}${json(other.aet)})`;
}

function decodePointerSegment(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function asciiLowerCase(text: string): string {
  return text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

function asciiUpperCase(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}


function readString(config: JsonObject, key: string, fallback: string): string {
  const value = config[key];
  return typeof value === 'string' ? value : fallback;
}

function readBoolean(config: JsonObject, key: string, fallback: boolean): boolean {
  const value = config[key];
  return typeof value === 'boolean' ? value : fallback;
}

function readStrings(config: JsonObject, key: string): string[] {
  const value = config[key];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function readUnsigned(config: JsonObject, key: string, fallback: number): number {
  const value = config[key];
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : fallback;
}
