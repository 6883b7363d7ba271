// How the operator's view judges an operation of a tenant's server (ServerEvent): its
// outcome (Success, Refused, Failure) and its DICOM audit event code (PS3.15 A.5). The
// counters, the metrics and the audit trail all follow these rules.
import type { Operation, ServerEvent } from './bridge.js';

export type Outcome = 'Success' | 'Refused' | 'Failure';
export type OperationEvent = Extract<ServerEvent, { type: 'operation' }>;

export const OPERATIONS: readonly Operation[] = ['A-ASSOCIATE', 'C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET'];
/** The DICOM commands (every operation but the association itself). */
export const COMMANDS = ['C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET'] as const;
export type Command = (typeof COMMANDS)[number];

/** DICOM audit event codes (PS3.15 A.5, DCM code values). */
export const AuditEventId = {
  /** DICOM Instances Transferred: C-STORE, C-MOVE, C-GET. */
  InstancesTransferred: 110104,
  /** Query: C-FIND. */
  Query: 110112,
  /** Security Alert: a refusal on isolation grounds. */
  SecurityAlert: 110113,
  /** User Authentication: an association, a C-ECHO, a command refused by the access rules. */
  UserAuthentication: 110114,
} as const;

/** "Refused: Not Authorized": a C-STORE of an instance that is another sender's, a C-MOVE outside AllowedMoveDestinations. */
const NOT_AUTHORIZED = 0x0124;
/** "Refused: Move Destination unknown". */
const MOVE_DESTINATION_UNKNOWN = 0xa801;

/**
 * Success: status 0x0000 or a warning (0xBxxx); an accepted association (it has no
 * DICOM status). Refused: rejected by the access rules, or by the tenant's isolation
 * (0x0124 on C-STORE and C-MOVE) or an unknown move destination (0xA801 on C-MOVE).
 * Failure: anything else, including a command that ended without a status.
 */
export function outcomeOf(event: OperationEvent): Outcome {
  if (event.refusedByAccessRules) return 'Refused';
  if (event.operation === 'A-ASSOCIATE') return 'Success';
  const { status } = event;
  if (status === undefined) return 'Failure';
  if (status === 0 || (status & 0xf000) === 0xb000) return 'Success';
  if (status === NOT_AUTHORIZED && (event.operation === 'C-STORE' || event.operation === 'C-MOVE')) return 'Refused';
  if (status === MOVE_DESTINATION_UNKNOWN && event.operation === 'C-MOVE') return 'Refused';
  return 'Failure';
}

/** Whether the tenant refused this operation to keep tenants apart (a Security Alert in the audit trail). */
export function isIsolationRefusal(event: OperationEvent): boolean {
  return (
    !event.refusedByAccessRules &&
    event.status === NOT_AUTHORIZED &&
    (event.operation === 'C-STORE' || event.operation === 'C-MOVE')
  );
}

/** The audit event code of an operation (PS3.15 A.5). */
export function eventIdOf(event: OperationEvent): number {
  if (event.refusedByAccessRules) return AuditEventId.UserAuthentication;
  if (isIsolationRefusal(event)) return AuditEventId.SecurityAlert;
  switch (event.operation) {
    case 'A-ASSOCIATE':
    case 'C-ECHO':
      return AuditEventId.UserAuthentication;
    case 'C-FIND':
      return AuditEventId.Query;
    case 'C-STORE':
    case 'C-MOVE':
    case 'C-GET':
      return AuditEventId.InstancesTransferred;
  }
}
