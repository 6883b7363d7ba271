// The single entry of the shim's calls into TypeScript (createDispatcher, src/dispatcher.ts)
// with the real argument validators (build/generated/bridge-validators.mjs, made by
// `node scripts/compile-schema.mjs`): unknown kinds, arguments of the wrong shape, fault
// injection (src/faults.ts), and the way to the handler.
import { describe, expect, it, vi } from 'vitest';
import { KINDS, type Kind, type Requests } from '../../src/bridge.js';
import type { TenantConfig } from '../../src/configuration.js';
import { BridgeMessageError, createDispatcher } from '../../src/dispatcher.js';
import { parseFaults } from '../../src/faults.js';
import type { Handlers } from '../../src/handler.js';
import { contextFor } from '../support/fake-context.js';
import { FakeOrthanc } from '../support/fake-orthanc.js';

const server = (index: number, aet: string): TenantConfig => ({
  index,
  aet,
  port: 4243 + index,
  labels: [aet.toLowerCase()],
  labelsConstraint: 'All',
  labelsStoreLevels: ['Study', 'Series', 'Instance'],
  foreignInstances: 'Reject',
});

/** Handlers that answer their kind's name, recording how they were called. */
function recordingHandlers() {
  return Object.fromEntries(KINDS.map((kind) => [kind, vi.fn(() => `answer of ${kind}`)])) as unknown as Handlers &
    Record<Kind, ReturnType<typeof vi.fn>>;
}

function setUp(faults?: string) {
  const context = { ...contextFor([server(0, 'A'), server(1, 'B')]), faults: parseFaults(faults) };
  const handlers = recordingHandlers();
  return { context, handlers, dispatch: createDispatcher(context, handlers) };
}

const caller = (tenant: number) => ({ tenant, remoteIp: '127.0.0.1', remoteAet: 'MODALITY', calledAet: tenant === 0 ? 'A' : 'B' });

const findRequest = (tenant: number): Requests['find'] => ({
  ...caller(tenant),
  query: [{ tag: '0008,0052', vr: 'CS', value: 'STUDY' }],
  deadline: 1_000,
});

const retrieveRequest = (tenant: number): Requests['retrieve'] => ({
  ...caller(tenant),
  request: 'Move',
  query: [{ tag: '0020,000d', vr: 'UI', value: '1.2' }],
  destinationAet: 'DEST',
  originatorMessageId: 3,
  deadline: 1_000,
});

/** Whether a promise is still pending once everything that can run has run. */
async function isPending(promise: unknown): Promise<boolean> {
  let settled = false;
  (promise as Promise<unknown>).then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return !settled;
}

describe('a message', () => {
  it('of a kind the dispatcher does not know throws, naming the kind', () => {
    const { dispatch, handlers } = setUp();

    expect(() => dispatch('unknownKind', {})).toThrow('multitenant-dicom: unknown request "unknownKind" from the native shim');
    expect(() => dispatch('toString', {}), 'a property of every object is no kind').toThrow('unknown request "toString"');
    expect(Object.values(handlers).some((handler) => (handler as ReturnType<typeof vi.fn>).mock.calls.length > 0)).toBe(false);
  });

  it('that is valid reaches its handler with the arguments and the context, and its answer goes back', () => {
    const { dispatch, handlers, context } = setUp();

    expect(dispatch('find', findRequest(1))).toBe('answer of find');
    expect(handlers.find).toHaveBeenCalledExactlyOnceWith(findRequest(1), context);
    expect(dispatch('changes', { events: [{ type: 'Deleted', level: 'Study', id: 'x' }] })).toBe('answer of changes');
    expect(dispatch('started', {})).toBe('answer of started');
  });

  it.each<[Kind, unknown, string]>([
    ['find', { ...findRequest(0), query: [{ tag: '0010,0010X', vr: 'PN', value: null }] }, 'field "query/0/tag" must match pattern "^[0-9a-f]{4},[0-9a-f]{4}$"'],
    ['find', { ...findRequest(0), deadline: undefined }, 'field "deadline" must have required property \'deadline\''],
    ['find', { ...findRequest(0), tenant: -1 }, 'field "tenant" must be >= 0'],
    ['find', null, 'must be object'],
    ['retrieve', { ...retrieveRequest(0), request: 'Put' }, 'field "request" must be equal to one of the allowed values'],
    ['retrieve', { ...retrieveRequest(0), originatorMessageId: 70_000 }, 'field "originatorMessageId" must be <= 65535'],
    ['changes', { events: [{ type: 'Stable', level: 'Patient', id: 'x' }] }, 'field "events/0/type" must be equal to one of the allowed values'],
    ['allowConnection', { ...caller(0), tenant: '0' }, 'field "tenant" must be integer'],
    [
      'storeHeld',
      { ...caller(0), ids: { Patient: 'p', Study: 's', Series: 'r', Instance: 'i' }, labels: { Frame: [] }, beforePost: false },
      'field "labels" must NOT have additional properties',
    ],
  ])('"%s" with arguments of the wrong shape throws, naming the kind and the field (%#)', (kind, args, detail) => {
    const { dispatch, handlers } = setUp();

    let thrown: unknown;
    try {
      dispatch(kind, args);
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(BridgeMessageError);
    expect((thrown as Error).message).toBe(`bridge message "${kind}": ${detail}`);
    expect(handlers[kind]).not.toHaveBeenCalled();
  });
});

describe('fault injection (MTD_FAULT_INJECTION)', () => {
  it('"KIND@AET" makes the handler throw for that tenant only', () => {
    const { dispatch, handlers } = setUp('find@A');

    expect(() => dispatch('find', findRequest(0))).toThrow('fault injected into "find" (MTD_FAULT_INJECTION)');
    expect(handlers.find).not.toHaveBeenCalled();
    expect(dispatch('find', findRequest(1)), 'tenant B').toBe('answer of find');
    expect(dispatch('retrieve', retrieveRequest(0)), 'another kind of tenant A').toBe('answer of retrieve');
  });

  it('"KIND" makes the handler throw for every tenant, and for messages of no tenant', () => {
    const { dispatch } = setUp('find,changes');

    expect(() => dispatch('find', findRequest(0))).toThrow('fault injected into "find"');
    expect(() => dispatch('find', findRequest(1))).toThrow('fault injected into "find"');
    expect(() => dispatch('changes', { events: [] })).toThrow('fault injected into "changes"');
  });

  it('"KIND@AET" never applies to a message of no tenant, nor to a tenant index that is no server', () => {
    const { dispatch } = setUp('changes@A,find@A');

    expect(dispatch('changes', { events: [] })).toBe('answer of changes');
    expect(dispatch('find', findRequest(7))).toBe('answer of find');
  });

  it('"hang:KIND@AET" gives a promise that never settles, for that tenant only, and never runs the handler', async () => {
    const { dispatch, handlers } = setUp('hang:retrieve@B');

    const hanging = dispatch('retrieve', retrieveRequest(1));

    expect(hanging).toBeInstanceOf(Promise);
    expect(await isPending(hanging)).toBe(true);
    expect(handlers.retrieve).not.toHaveBeenCalled();
    expect(dispatch('retrieve', retrieveRequest(0)), 'tenant A').toBe('answer of retrieve');
  });

  it('comes after the check of the arguments: a malformed message still throws its shape error', () => {
    const { dispatch } = setUp('find');

    expect(() => dispatch('find', { ...findRequest(0), query: 'all' })).toThrow('bridge message "find": field "query" must be array');
  });
});

describe('the real handlers', () => {
  it('a find or a retrieve whose deadline has passed asks Orthanc nothing', async () => {
    const fake = new FakeOrthanc();
    const context = contextFor([server(0, 'A')], () => fake.bridge);
    const dispatch = createDispatcher(context);

    await expect(dispatch('find', { ...findRequest(0), deadline: Date.now() - 1 }) as Promise<unknown>).rejects.toThrow(
      'the request\'s deadline passed before',
    );
    await expect(dispatch('retrieve', { ...retrieveRequest(0), deadline: Date.now() - 1 }) as Promise<unknown>).rejects.toThrow(
      'the request\'s deadline passed before /modalities?expand',
    );
    expect(fake.calls).toEqual([]);
  });
});
