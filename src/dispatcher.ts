// The single entry of the native shim's calls into TypeScript: each message kind of
// bridge.ts goes to the handler that owns the decision, after its arguments are checked
// against the kind's schema (a bad shape is an error naming the kind and the field).
import type { ErrorObject } from 'ajv';
import * as validators from '../build/generated/bridge-validators.mjs';
import { acceptedTransferSyntaxes, proposedStorageTransferSyntaxes, unknownSopClassAccepted } from './acceptance.js';
import { allowConnection, allowRequest } from './access.js';
import { KINDS, type Kind, type Requests } from './bridge.js';
import { runHandlerFault } from './faults.js';
import { find } from './find.js';
import type { HandlerContext, Handlers } from './handler.js';
import { changes, events, initialize, started } from './lifecycle.js';
import { lookupModality, sameAet } from './modalities.js';
import { retrieve } from './move.js';
import type { Dispatcher } from './native.js';
import { rest } from './status.js';
import { storeHeld } from './store.js';

export const HANDLERS: Handlers = {
  initialize,
  started,
  allowConnection,
  allowRequest,
  sameAet,
  lookupModality,
  acceptedTransferSyntaxes,
  proposedStorageTransferSyntaxes,
  unknownSopClassAccepted,
  storeHeld,
  find,
  retrieve,
  changes,
  events,
  rest,
};

/** A message the shim sent with arguments of the wrong shape. */
export class BridgeMessageError extends Error {
  constructor(kind: string, error: ErrorObject | undefined) {
    const field = error?.instancePath.replace(/^\//, '') || (error?.params as { missingProperty?: string } | undefined)?.missingProperty;
    super(`bridge message "${kind}": ${field ? `field "${field}" ` : ''}${error?.message ?? 'is malformed'}`);
    this.name = 'BridgeMessageError';
  }
}

export function createDispatcher(context: HandlerContext, handlers: Handlers = HANDLERS): Dispatcher {
  return (kind, args) => {
    if (!isKind(kind)) throw new Error(`multitenant-dicom: unknown request "${kind}" from the native shim`);
    const validate = validators[kind];
    if (!validate(args)) throw new BridgeMessageError(kind, validate.errors?.[0]);
    const request = args as Requests[typeof kind];
    const fault = context.faults.handlerFault(kind, tenantAet(context, request));
    if (fault !== undefined) return runHandlerFault(fault, kind);
    return (handlers[kind] as (args: unknown, context: HandlerContext) => unknown)(request, context);
  };
}

function isKind(kind: string): kind is Kind {
  return (KINDS as readonly string[]).includes(kind);
}

function tenantAet(context: HandlerContext, request: object): string | undefined {
  if (!('tenant' in request) || typeof request.tenant !== 'number') return undefined;
  try {
    return context.tenants.byIndex(request.tenant).aet;
  } catch {
    return undefined;
  }
}
