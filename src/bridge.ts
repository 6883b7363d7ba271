// The messages between the native shim and TypeScript, defined once: every kind the
// shim sends, the shape of its arguments (a JSON Schema, checked on arrival: a bad
// shape is an error naming the kind and the field) and the shape of its answer (read by
// the shim, which names the kind and the field of a bad answer in the same way).
// scripts/compile-schema.mjs compiles the argument schemas with ajv (standalone), and
// writes the kinds as C++ constants (build/generated/bridge_kinds.h) for native/.
import type { JSONSchemaType } from 'ajv';
import type { OrthancIds, ResourceLevel } from './dicom.js';

export const KINDS = [
  'initialize',
  'started',
  'allowConnection',
  'allowRequest',
  'sameAet',
  'lookupModality',
  'acceptedTransferSyntaxes',
  'proposedStorageTransferSyntaxes',
  'unknownSopClassAccepted',
  'storeHeld',
  'find',
  'retrieve',
  'changes',
  'events',
  'rest',
] as const;
export type Kind = (typeof KINDS)[number];

/** The DICOM commands a caller may be allowed (Orthanc's DicomRequestType). */
export type DicomRequestType = 'Echo' | 'Find' | 'FindWorklist' | 'Get' | 'Move' | 'Store' | 'NAction' | 'NEventReport';

/** Who calls a tenant's server; `tenant` is the server's index in MultitenantDicom.Servers. */
export interface CallerFields {
  tenant: number;
  remoteIp: string;
  remoteAet: string;
  calledAet: string;
}

/** One element of a C-FIND, C-MOVE or C-GET identifier. */
export interface QueryElement {
  tag: string; // "gggg,eeee", lower-case hexadecimal
  vr: string; // "PN", "DA", ...
  name?: string; // its keyword in DCMTK's dictionary, e.g. PatientName
  value: string | null; // null: universal (a return key only), or a binary or sequence value
}

/** A change in Orthanc's store (OrthancPluginChangeType), as the shim forwards it. */
export interface ChangeEvent {
  type: 'NewPatient' | 'NewChildInstance' | 'Deleted';
  level: ResourceLevel;
  id: string;
}

/** A change type JS listens to, at every level or at one ("NewChildInstance:Patient"). */
export type ChangeOfInterest = ChangeEvent['type'] | `${ChangeEvent['type']}:${ResourceLevel}`;

/** The DICOM operations of a tenant's server, as the audit trail and the metrics name them. */
export type Operation = 'A-ASSOCIATE' | 'C-ECHO' | 'C-STORE' | 'C-FIND' | 'C-MOVE' | 'C-GET';

/**
 * What happened on a tenant's server. The shim reports facts (what was asked, what it
 * answered, how long it took); TypeScript judges them (outcome, audit event code).
 */
export type ServerEvent =
  | { type: 'state'; tenant: number; state: 'Listening' | 'Failed' | 'Stopped'; error?: string }
  | {
      type: 'operation';
      tenant: number;
      operation: Operation;
      /** When it began, in ms since the epoch. */
      at: number;
      durationMs: number;
      callingAet: string;
      calledAet: string;
      peer: string;
      /** The DICOM status answered; absent when the association or the command was rejected before any. */
      status?: number;
      /** Rejected by the access rules (DicomModalities, DicomAlwaysAllow*, AllowedCallers). */
      refusedByAccessRules?: boolean;
      /** C-FIND, C-MOVE, C-GET: the identifier as received. */
      query?: QueryElement[];
      /** C-STORE: the instance's; C-MOVE, C-GET: those actually sent. */
      patientIds?: string[];
      studyInstanceUids?: string[];
      /** C-FIND whose answers the shim used: the key of the resources answered, kept on this side (Activity.keepAudited). */
      auditedKey?: number;
      /** C-STORE. */
      sopInstanceUid?: string;
      bytes?: number;
      /** C-FIND: the answers; C-MOVE, C-GET: the instances sent. */
      instances?: number;
      /** C-MOVE: the destination's AET. */
      destination?: string;
      /** C-STORE that created its instance and labelled it: the Orthanc identifier of its patient... */
      createdInPatient?: string;
      /** ...and the label writes it made, one "Level/label" per line (equal plans label alike). */
      labelPlan?: string;
    }
  | { type: 'timeout'; tenant: number; kind: string };

export interface Requests {
  initialize: { dcmtkStorageSopClasses: string[]; orthancVersion: string };
  started: Record<string, never>;
  allowConnection: CallerFields;
  allowRequest: CallerFields & { request: DicomRequestType };
  sameAet: { tenant: number; first: string; second: string };
  lookupModality: { tenant: number; aet: string };
  acceptedTransferSyntaxes: CallerFields;
  proposedStorageTransferSyntaxes: CallerFields;
  unknownSopClassAccepted: CallerFields;
  /**
   * Orthanc already holds the instance a C-STORE brings. `labels`: the labels it carries
   * at each of the tenant's LabelsStoreLevels; `beforePost`: asked before the POST
   * (with OverwriteInstances, a POST would replace it), else Orthanc answered AlreadyStored.
   */
  storeHeld: CallerFields & { ids: OrthancIds; labels: Partial<Record<ResourceLevel, string[]>>; beforePost: boolean };
  /** `deadline`: when the caller gives up, in ms since the epoch (as Date.now()). */
  find: CallerFields & { query: QueryElement[]; deadline: number };
  retrieve: CallerFields & {
    request: 'Get' | 'Move';
    query: QueryElement[];
    destinationAet: string;
    originatorMessageId: number;
    deadline: number;
  };
  changes: { events: ChangeEvent[] };
  events: { events: ServerEvent[] };
  /** A REST call to /plugins/multitenant-dicom/... (`path` is what follows, e.g. "/tenants/A"). */
  rest: { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; path: string; query: Record<string, string>; body: string; deadline: number };
}

/**
 * An answer the shim may reuse while GET `uri` reads exactly `content` (native/remembered_answers.h).
 * `modalities`: `uri` is Orthanc's list of modalities, whose changes Orthanc signals to the shim
 * (UpdatedModalities) before the call that made them returns: no GET is needed until one.
 */
export interface Remembered<T> {
  answer: T;
  whileUnchanged: { uri: string; content: string; modalities?: boolean };
}

/** What a C-STORE does without asking (native/store_handler.cpp), computed per tenant at start-up. */
export interface StorePlan {
  /** With OverwriteInstances: ask storeHeld before a POST could replace an instance Orthanc holds. */
  askBeforePost: boolean;
  /** The labels to add, the deepest level first; the shim adds those the resource lacks, and removes them again if the store fails. */
  labelWrites: { level: ResourceLevel; label: string }[];
  /** The C-STORE statuses of the outcomes the shim meets, as Orthanc's own C-STORE SCP answers them. */
  statuses: { filteredOut: number; badFileFormat: number; failure: number; refused: number };
}

/** What JS decided about one tenant server at initialisation. */
export interface ServerSpec {
  index: number;
  name: string; // for log lines, e.g. MultitenantDicom.Servers[1] (AET "HELLO")
  aet: string;
  port: number;
  checkCalledAet: boolean;
  associationTimeoutSeconds: number;
  threadsCount: number;
  maximumPduLength: number;
  /** DICOM TLS of its port; absent: plaintext. */
  tls?: TlsSpec;
  /** What its C-MOVE sub-operations present to a destination with UseDicomTls. */
  outgoingTls?: TlsSpec;
  store: StorePlan;
}

export interface TlsSpec {
  certificate: string;
  privateKey: string;
  trustedCertificates: string;
  remoteCertificateRequired: boolean;
  minimumVersion: number;
  ciphers: string[];
}

/** A tenant server as the native shim runs it: listening, or why not. */
export interface ServerState {
  index: number;
  state: 'Listening' | 'Failed';
  error?: string;
}

export interface InitializationAnswer {
  error?: string;
  locale?: string;
  defaultEncoding?: string;
  acceptedSopClasses?: string[];
  /** Orthanc's TLS options that hold for every C-MOVE sub-operation sent with DICOM TLS. */
  outgoingTls?: { minimumVersion: number; ciphers: string[] };
  /** The changes of Orthanc's store that JS wants to hear of (see mixing.ts). */
  changes?: ChangeOfInterest[];
  /** JavaScript for Orthanc's legacy explorer (OrthancPluginExtendOrthancExplorer2): a link to the status page. */
  explorerExtension?: string;
}

export type FindAnswer = Record<string, string>;

export type RetrievePlan =
  | {
      instances: string[];
      allowTranscoding: boolean;
      /** C-MOVE: the destination, as GET /modalities?expand describes it. */
      destination?: Record<string, unknown>;
      scuTimeoutSeconds?: number;
      /** SynchronousCMove false: Orthanc's job engine sends, the C-MOVE ends at once. */
      submittedAsJob?: boolean;
      /** The studies of `instances`, in their order: the audit trail names those of which an instance is sent. */
      studies: { patientId: string; studyInstanceUid: string; instances: number }[];
    }
  | { refusal: number; reason: string };

export interface Answers {
  initialize: InitializationAnswer;
  started: true;
  allowConnection: Remembered<true> | false;
  allowRequest: Remembered<true> | false;
  sameAet: boolean;
  lookupModality: Record<string, unknown> | null;
  acceptedTransferSyntaxes: Remembered<string[]>;
  proposedStorageTransferSyntaxes: Remembered<string[]>;
  unknownSopClassAccepted: Remembered<boolean>;
  storeHeld: { decision: 'refuse' | 'label' | 'store' };
  /** `auditedKey`: with an audit trail, the key under which JS keeps the answers' patients and studies; the shim passes it back in the operation's report. */
  find: { answers: FindAnswer[]; complete: boolean; auditedKey?: number };
  retrieve: RetrievePlan;
  changes: undefined;
  events: undefined;
  /** `allow`: with status 405, the allowed methods ("GET, PUT"), sent as the Allow header (Orthanc sends a 405 without a body). */
  rest: { status: number; contentType: string; body: string; allow?: string };
}

// ---------------------------------------------------------------------------------------
// The argument schemas.

const text = { type: 'string' } as const;
const tenantIndex = { type: 'integer', minimum: 0 } as const;
const deadline = { type: 'number' } as const;
const callerProperties = { tenant: tenantIndex, remoteIp: text, remoteAet: text, calledAet: text } as const;
const callerRequired = ['tenant', 'remoteIp', 'remoteAet', 'calledAet'] as const;

const caller: JSONSchemaType<CallerFields> = {
  type: 'object',
  properties: callerProperties,
  required: [...callerRequired],
};

// ajv's JSONSchemaType cannot express a required property that may be null.
const queryElement = {
  type: 'object',
  properties: {
    tag: { type: 'string', pattern: '^[0-9a-f]{4},[0-9a-f]{4}$' },
    vr: text,
    name: text,
    value: { type: 'string', nullable: true },
  },
  required: ['tag', 'vr', 'value'],
} as unknown as JSONSchemaType<QueryElement>;

const labelList = { type: 'array', items: text, nullable: true } as const;
const orthancIds: JSONSchemaType<OrthancIds> = {
  type: 'object',
  properties: { Patient: text, Study: text, Series: text, Instance: text },
  required: ['Patient', 'Study', 'Series', 'Instance'],
};

// A discriminated union: ajv's JSONSchemaType cannot type it; its shapes are checked all the same.
const serverEvent = {
  type: 'object',
  required: ['type', 'tenant'],
  properties: { type: { type: 'string', enum: ['state', 'operation', 'timeout'] }, tenant: tenantIndex },
  oneOf: [
    {
      properties: { type: { const: 'state' }, state: { type: 'string', enum: ['Listening', 'Failed', 'Stopped'] }, error: text },
      required: ['state'],
    },
    {
      properties: {
        type: { const: 'operation' },
        operation: { type: 'string', enum: ['A-ASSOCIATE', 'C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET'] },
        at: { type: 'number' },
        durationMs: { type: 'number', minimum: 0 },
        callingAet: text,
        calledAet: text,
        peer: text,
        status: { type: 'integer', minimum: 0, maximum: 65535 },
        refusedByAccessRules: { type: 'boolean' },
        query: { type: 'array', items: queryElement },
        patientIds: { type: 'array', items: text },
        studyInstanceUids: { type: 'array', items: text },
        auditedKey: { type: 'integer', minimum: 0 },
        sopInstanceUid: text,
        bytes: { type: 'number', minimum: 0 },
        instances: { type: 'integer', minimum: 0 },
        destination: text,
        createdInPatient: text,
        labelPlan: text,
      },
      required: ['operation', 'at', 'durationMs', 'callingAet', 'calledAet', 'peer'],
    },
    { properties: { type: { const: 'timeout' }, kind: text }, required: ['kind'] },
  ],
};

export const REQUEST_SCHEMAS: { [K in Kind]: JSONSchemaType<Requests[K]> } = {
  initialize: {
    type: 'object',
    properties: { dcmtkStorageSopClasses: { type: 'array', items: text }, orthancVersion: text },
    required: ['dcmtkStorageSopClasses', 'orthancVersion'],
  },
  started: { type: 'object', required: [] } as unknown as JSONSchemaType<Requests['started']>,
  allowConnection: caller,
  allowRequest: {
    type: 'object',
    properties: {
      ...callerProperties,
      request: { type: 'string', enum: ['Echo', 'Find', 'FindWorklist', 'Get', 'Move', 'Store', 'NAction', 'NEventReport'] },
    },
    required: [...callerRequired, 'request'],
  },
  sameAet: { type: 'object', properties: { tenant: tenantIndex, first: text, second: text }, required: ['tenant', 'first', 'second'] },
  lookupModality: { type: 'object', properties: { tenant: tenantIndex, aet: text }, required: ['tenant', 'aet'] },
  acceptedTransferSyntaxes: caller,
  proposedStorageTransferSyntaxes: caller,
  unknownSopClassAccepted: caller,
  storeHeld: {
    type: 'object',
    properties: {
      ...callerProperties,
      ids: orthancIds,
      labels: {
        type: 'object',
        properties: { Patient: labelList, Study: labelList, Series: labelList, Instance: labelList },
        required: [],
        additionalProperties: false,
      },
      beforePost: { type: 'boolean' },
    },
    required: [...callerRequired, 'ids', 'labels', 'beforePost'],
  },
  find: {
    type: 'object',
    properties: { ...callerProperties, query: { type: 'array', items: queryElement }, deadline },
    required: [...callerRequired, 'query', 'deadline'],
  },
  retrieve: {
    type: 'object',
    properties: {
      ...callerProperties,
      request: { type: 'string', enum: ['Get', 'Move'] },
      query: { type: 'array', items: queryElement },
      destinationAet: text,
      originatorMessageId: { type: 'integer', minimum: 0, maximum: 65535 },
      deadline,
    },
    required: [...callerRequired, 'request', 'query', 'destinationAet', 'originatorMessageId', 'deadline'],
  },
  changes: {
    type: 'object',
    properties: {
      events: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['NewPatient', 'NewChildInstance', 'Deleted'] },
            level: { type: 'string', enum: ['Patient', 'Study', 'Series', 'Instance'] },
            id: text,
          },
          required: ['type', 'level', 'id'],
        },
      },
    },
    required: ['events'],
  },
  events: {
    type: 'object',
    properties: { events: { type: 'array', items: serverEvent } },
    required: ['events'],
  } as unknown as JSONSchemaType<Requests['events']>,
  rest: {
    type: 'object',
    properties: {
      method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'DELETE'] },
      path: text,
      query: { type: 'object', additionalProperties: text, required: [] },
      body: text,
      deadline,
    },
    required: ['method', 'path', 'query', 'body', 'deadline'],
  } as unknown as JSONSchemaType<Requests['rest']>,
};
