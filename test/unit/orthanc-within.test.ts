// The view of one DICOM request (Orthanc.within in src/orthanc.ts): at most
// REQUEST_CONCURRENCY of its REST calls in flight, and none sent once its deadline has
// passed. Measured with a bridge whose calls are released by hand.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { NativeBridge } from '../../src/native.js';
import { DeadlineExceededError, Orthanc, REQUEST_CONCURRENCY } from '../../src/orthanc.js';

/** A bridge whose GETs stay in flight until released, in the order they were sent. */
function heldBridge() {
  const inFlight: { uri: string; release: () => void }[] = [];
  const sent: string[] = [];
  const bridge: NativeBridge = {
    restGet: (uri) =>
      new Promise<Buffer>((resolve) => {
        sent.push(uri);
        inFlight.push({ uri, release: () => resolve(Buffer.from(JSON.stringify(uri))) });
      }),
    restPost: async (uri) => {
      throw new Error(`unexpected POST ${uri}`);
    },
    restPut: async (uri) => {
      throw new Error(`unexpected PUT ${uri}`);
    },
    applyServers: async () => [],
    getGlobalProperty: async () => '',
    setGlobalProperty: async () => {},
    getConfigurationPath: () => null,
    restDelete: async (uri) => {
      throw new Error(`unexpected DELETE ${uri}`);
    },
    getConfiguration: () => '{}',
    log: () => {},
    storeActivity: () => ({ inProgress: false, lastBegun: 0, now: 0 }),
    setDispatcher: () => {},
  };
  /** Ends the oldest call in flight, once every call that can start has started. */
  const releaseFirst = async () => {
    await settle();
    inFlight.shift()!.release();
    await settle();
  };
  return { bridge, inFlight, sent, releaseFirst };
}

/** Lets every promise continuation that can run, run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const uris = (count: number, prefix = '/patients/') => Array.from({ length: count }, (_, index) => `${prefix}${index}`);

describe('the calls of one request', () => {
  it(`never run more than REQUEST_CONCURRENCY (${REQUEST_CONCURRENCY}) at once, and all run in the end`, async () => {
    const { bridge, inFlight, sent, releaseFirst } = heldBridge();
    const view = Orthanc.connect(bridge).within(undefined);
    const wanted = uris(3 * REQUEST_CONCURRENCY + 1);

    const answers = Promise.all(wanted.map((uri) => view.getJson<string>(uri)));
    await settle();
    let most = inFlight.length;
    expect(inFlight.map((call) => call.uri)).toEqual(wanted.slice(0, REQUEST_CONCURRENCY));
    while (inFlight.length > 0) {
      await releaseFirst();
      most = Math.max(most, inFlight.length);
    }

    expect(most).toBe(REQUEST_CONCURRENCY);
    expect(sent).toEqual(wanted);
    expect(await answers).toEqual(wanted);
  });

  it('start the next one as soon as one ends', async () => {
    const { bridge, inFlight, releaseFirst } = heldBridge();
    const view = Orthanc.connect(bridge).within(undefined);
    const wanted = uris(REQUEST_CONCURRENCY + 2);

    void Promise.all(wanted.map((uri) => view.getJson(uri)));
    await settle();
    await releaseFirst();

    expect(inFlight.map((call) => call.uri)).toEqual(wanted.slice(1, REQUEST_CONCURRENCY + 1));
    while (inFlight.length > 0) await releaseFirst();
  });

  it('do not hold back the calls of another request', async () => {
    const { bridge, inFlight } = heldBridge();
    const orthanc = Orthanc.connect(bridge);
    const busy = orthanc.within(undefined);
    const other = orthanc.within(undefined);

    for (const uri of uris(REQUEST_CONCURRENCY + 1, '/busy/')) void busy.getJson(uri);
    void other.getJson('/other/0');
    await settle();

    expect(inFlight.map((call) => call.uri)).toEqual([...uris(REQUEST_CONCURRENCY, '/busy/'), '/other/0']);
    for (const call of inFlight.splice(0)) call.release();
    await settle();
    for (const call of inFlight.splice(0)) call.release();
  });
});

describe('the deadline of a request', () => {
  const start = Date.UTC(2026, 0, 1);

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(start);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets calls through before it, and rejects those made at or after it without sending them', async () => {
    const { bridge, sent, releaseFirst } = heldBridge();
    const view = Orthanc.connect(bridge).within(start + 1000);

    const before = view.getJson('/patients/before');
    await releaseFirst();
    expect(await before).toBe('/patients/before');

    vi.setSystemTime(start + 1000);
    const late = view.getJson('/patients/late').catch((caught: unknown) => caught);
    await settle();

    expect(sent).toEqual(['/patients/before']);
    const error = await late;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ uri: '/patients/late', message: 'the request\'s deadline passed before /patients/late' });
  });

  it('rejects the calls still waiting for their turn when it passes, and sends none of them', async () => {
    const { bridge, inFlight, sent, releaseFirst } = heldBridge();
    const view = Orthanc.connect(bridge).within(start + 1000);
    const wanted = uris(REQUEST_CONCURRENCY + 2);

    const outcomes = Promise.allSettled(wanted.map((uri) => view.getJson(uri)));
    await settle();
    vi.setSystemTime(start + 5000);
    while (inFlight.length > 0) await releaseFirst();

    const settled = await outcomes;
    expect(settled.slice(0, REQUEST_CONCURRENCY).map((outcome) => outcome.status), 'sent before the deadline').toEqual(
      Array(REQUEST_CONCURRENCY).fill('fulfilled'),
    );
    const late = settled.slice(REQUEST_CONCURRENCY);
    expect(late.map((outcome) => (outcome.status === 'rejected' ? outcome.reason : outcome))).toEqual(
      wanted.slice(REQUEST_CONCURRENCY).map((uri) => new DeadlineExceededError(uri)),
    );
    expect(late.every((outcome) => outcome.status === 'rejected' && outcome.reason instanceof DeadlineExceededError)).toBe(true);
    expect(sent).toEqual(wanted.slice(0, REQUEST_CONCURRENCY));
  });

  it('is no limit when undefined', async () => {
    const { bridge, releaseFirst } = heldBridge();
    const view = Orthanc.connect(bridge).within(undefined);

    vi.setSystemTime(Number.MAX_SAFE_INTEGER);
    const answer = view.getJson('/patients/any');
    await settle();
    await releaseFirst();

    expect(await answer).toBe('/patients/any');
  });
});
