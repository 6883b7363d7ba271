// The SDK bridge (native/sdk_bridge.cpp, native/js_dispatcher.cpp) in plain Node, over
// the stand-in Orthanc plugin context of native/test_addon.cpp (built by binding.gyp as
// build/Release/sdk_bridge.node). See test_addon.cpp for the stand-in REST API.
//
// The dispatcher is global state in the addon: the tests of "calls from other threads
// into JS" run in file order, and shutdownDispatcher() is exercised last.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NativeBridge, OrthancRestError } from '../../src/native.js';

/** A dispatcher as these tests install it: the arguments are whatever simulateOrthancCall passed. */
type Dispatcher = (kind: string, args: Record<string, unknown>) => unknown;

type CallStatus = 'ok' | 'failed' | 'timedOut' | 'unavailable';

interface SettledCall {
  status: CallStatus;
  result?: string;
  error?: string;
}

interface Recorded {
  kind: string;
  text: string;
  value: number;
}

interface Testing {
  setConfiguration(json: string): void;
  takeRecorded(): Recorded[];
  simulateOrthancCall(kind: string, argumentsJson: string, timeoutMs: number): Promise<SettledCall>;
  shutdownDispatcher(): void;
}

type TestAddon = NativeBridge & { testing: Testing };

const addon = createRequire(import.meta.url)('../../build/Release/sdk_bridge.node') as TestAddon;
const { testing } = addon;

const UNKNOWN_RESOURCE = 17;

/** Resolves on the next turn of the event loop (check phase), without any timer. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Whether `promise` has settled, observed after one turn of the event loop. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await nextTurn();
  return settled;
}

async function rejectionOf(promise: Promise<unknown>): Promise<OrthancRestError> {
  try {
    await promise;
  } catch (error) {
    return error as OrthancRestError;
  }
  throw new Error('the promise resolved, a rejection was expected');
}

function allByteValues(repeat: number): Buffer {
  const bytes = Buffer.alloc(256 * repeat);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
  return bytes;
}

describe('REST calls', () => {
  it('GET answers a Buffer', async () => {
    const answer = await addon.restGet('/echo/abc');
    expect(Buffer.isBuffer(answer)).toBe(true);
    expect(answer.toString('latin1')).toBe('abc');
    expect((await addon.restGet('/echo/another-text')).toString()).toBe('another-text');
  });

  it('POST and PUT round-trip every byte value, NUL included', async () => {
    const body = allByteValues(4);
    expect(body.includes(0)).toBe(true);
    const posted = await addon.restPost('/echo', body);
    const put = await addon.restPut('/echo', body);
    for (const answer of [posted, put]) {
      expect(Buffer.isBuffer(answer)).toBe(true);
      expect(answer).not.toBe(body);
      expect(answer.length).toBe(body.length);
      expect(answer.equals(body)).toBe(true);
    }
    // Separate memory: the answer is not a view of the body.
    body[0] = 0xff;
    expect(posted[0]).toBe(0);
    expect(put[0]).toBe(0);
  });

  it('sends only the viewed bytes of a Buffer that is a slice of a larger one', async () => {
    const whole = Buffer.from('0123456789abcdef');
    const answer = await addon.restPost('/echo', whole.subarray(3, 7));
    expect(answer.toString()).toBe('3456');
  });

  it('sends a string body as UTF-8, NUL included', async () => {
    const text = 'héllo ✓ 𝄞 with\0nul';
    const posted = await addon.restPost('/echo', text);
    expect(posted.equals(Buffer.from(text, 'utf8'))).toBe(true);
    const put = await addon.restPut('/echo', text);
    expect(put.toString('utf8')).toBe(text);
  });

  it('answers an empty Buffer to an empty body', async () => {
    for (const body of ['', Buffer.alloc(0)]) {
      const answer = await addon.restPost('/echo', body);
      expect(Buffer.isBuffer(answer)).toBe(true);
      expect(answer.length).toBe(0);
    }
  });

  it('rejects an unknown resource with an Error that carries the Orthanc code, method and URI', async () => {
    const get = await rejectionOf(addon.restGet('/no/such/resource'));
    expect(get).toBeInstanceOf(Error);
    expect(get.orthancCode).toBe(UNKNOWN_RESOURCE);
    expect(get.message).toContain('GET');
    expect(get.message).toContain('/no/such/resource');
    expect(get.message).toContain('Unknown resource');

    const post = await rejectionOf(addon.restPost('/elsewhere', 'x'));
    expect(post).toBeInstanceOf(Error);
    expect(post.orthancCode).toBe(UNKNOWN_RESOURCE);
    expect(post.message).toMatch(/POST \/elsewhere/);

    const put = await rejectionOf(addon.restPut('/elsewhere', Buffer.from('x')));
    expect(put.orthancCode).toBe(UNKNOWN_RESOURCE);
    expect(put.message).toMatch(/PUT \/elsewhere/);
  });

  it('DELETE resolves undefined on success and rejects on an unknown resource', async () => {
    await expect(addon.restDelete('/exists')).resolves.toBeUndefined();
    const error = await rejectionOf(addon.restDelete('/nope'));
    expect(error).toBeInstanceOf(Error);
    expect(error.orthancCode).toBe(UNKNOWN_RESOURCE);
    expect(error.message).toMatch(/DELETE \/nope/);
  });

  it('throws a TypeError synchronously on bad arguments', () => {
    const loose = addon as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of ['restGet', 'restPost', 'restPut', 'restDelete']) {
      expect(() => loose[method]!(42), method).toThrow(TypeError);
      expect(() => loose[method]!(), method).toThrow(TypeError);
      expect(() => loose[method]!(Buffer.from('/echo/abc')), method).toThrow(TypeError);
    }
    for (const method of ['restPost', 'restPut']) {
      expect(() => loose[method]!('/echo', 42), method).toThrow(TypeError);
      expect(() => loose[method]!('/echo', { data: 'x' }), method).toThrow(TypeError);
      expect(() => loose[method]!('/echo', null), method).toThrow(TypeError);
    }
  });
});

describe('REST calls run on the libuv pool', () => {
  it('keeps the JS thread responsive while a call is running', async () => {
    const order: string[] = [];
    const slow = addon.restGet('/slow/300').then((answer) => {
      order.push('slow');
      return answer;
    });
    setImmediate(() => order.push('immediate'));
    queueMicrotask(() => order.push('microtask'));
    expect((await slow).toString()).toBe('done');
    expect(order).toEqual(['microtask', 'immediate', 'slow']);
  });

  it('runs several calls in parallel, all of which resolve', async () => {
    let settledBeforeNextTurn = 0;
    const calls = [0, 1, 2, 3].map((i) =>
      addon.restGet('/slow/200').then((answer) => {
        settledBeforeNextTurn++;
        return `${i}:${answer.toString()}`;
      }),
    );
    await nextTurn();
    // Starting four 200 ms calls did not block the JS thread for them.
    expect(settledBeforeNextTurn).toBe(0);
    expect(await Promise.all(calls)).toEqual(['0:done', '1:done', '2:done', '3:done']);
  });

  it('round-trips a large body intact', async () => {
    const size = 8 * 1024 * 1024;
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 31 + (i >>> 11)) & 0xff;
    const answer = await addon.restPost('/echo', body);
    expect(answer.length).toBe(size);
    expect(answer.equals(body)).toBe(true);

    const put = await addon.restPut('/echo', body);
    expect(put.equals(body)).toBe(true);
    // Answers are independent copies (external buffers, freed later by the GC).
    answer[size - 1] = answer[size - 1]! ^ 0xff;
    expect(put[size - 1]).toBe(body[size - 1]);
  });

  it('answers a large GET', async () => {
    const text = 'x'.repeat(1024 * 1024) + 'end';
    const answer = await addon.restGet(`/echo/${text}`);
    expect(answer.length).toBe(text.length);
    expect(answer.toString()).toBe(text);
  });
});

describe('configuration and log', () => {
  beforeAll(() => {
    testing.takeRecorded();
  });

  it('getConfiguration returns what Orthanc holds', () => {
    const first = JSON.stringify({ Name: 'Orthanc', MultitenantDicom: { Servers: [{ Port: 4242 }] }, Text: 'é ✓' });
    testing.setConfiguration(first);
    expect(addon.getConfiguration()).toBe(first);
    expect(JSON.parse(addon.getConfiguration())).toEqual(JSON.parse(first));

    const second = JSON.stringify({ Name: 'Other' });
    testing.setConfiguration(second);
    expect(addon.getConfiguration()).toBe(second);
  });

  it('logs each level to Orthanc', () => {
    addon.log('info', 'an info message');
    addon.log('warning', 'a warning message');
    addon.log('error', 'an error message ✓');
    expect(testing.takeRecorded()).toEqual([
      { kind: 'info', text: 'an info message', value: 0 },
      { kind: 'warning', text: 'a warning message', value: 0 },
      { kind: 'error', text: 'an error message ✓', value: 0 },
    ]);
  });

  it('refuses an unknown log level with a RangeError and logs nothing', () => {
    const loose = addon as unknown as { log(...args: unknown[]): void };
    expect(() => loose.log('debug', 'not logged')).toThrow(RangeError);
    expect(() => loose.log('INFO', 'not logged')).toThrow(RangeError);
    expect(() => loose.log(1, 'not logged')).toThrow(TypeError);
    expect(() => loose.log('info')).toThrow(TypeError);
    expect(testing.takeRecorded()).toEqual([]);
  });
});

describe('calls from other threads into JS', () => {
  // The installed dispatcher delegates to `handler`, which each test replaces.
  let handler: Dispatcher = () => {
    throw new Error('no handler for this test');
  };
  const dispatcher: Dispatcher = (kind, args) => handler(kind, args);

  afterAll(() => {
    // Releases the thread-safe function, which would keep the worker's event loop alive.
    testing.shutdownDispatcher();
  });

  it('is unavailable before setDispatcher', async () => {
    const outcome = await testing.simulateOrthancCall('early', '{}', 1000);
    expect(outcome.status).toBe('unavailable');
    expect(outcome.result).toBeUndefined();
    expect(outcome.error).toMatch(/not running/);
  });

  it('setDispatcher takes a function', () => {
    const loose = addon as unknown as { setDispatcher(...args: unknown[]): void };
    expect(() => loose.setDispatcher('not a function')).toThrow(TypeError);
    expect(() => loose.setDispatcher()).toThrow(TypeError);
  });

  it('returns a synchronous result as JSON', async () => {
    addon.setDispatcher(dispatcher as (kind: string, args: unknown) => unknown);
    handler = (kind) => ({ answeredTo: kind, list: [1, 'two', null] });
    const outcome = await testing.simulateOrthancCall('sync', '{}', 5000);
    expect(outcome).toEqual({ status: 'ok', result: JSON.stringify({ answeredTo: 'sync', list: [1, 'two', null] }) });
  });

  it('passes the kind and the parsed arguments object', async () => {
    const received: Array<{ kind: string; args: Record<string, unknown> }> = [];
    handler = (kind, args) => {
      received.push({ kind, args });
      return true;
    };
    const args = { calledAet: 'TENANT_A', callingAet: 'MODALITY', port: 4242, tags: ['0010,0010'], nested: { ok: true } };
    const outcome = await testing.simulateOrthancCall('IncomingFind', JSON.stringify(args), 5000);
    expect(outcome).toEqual({ status: 'ok', result: 'true' });
    expect(received).toHaveLength(1);
    expect(received[0]!.kind).toBe('IncomingFind');
    expect(typeof received[0]!.args).toBe('object');
    expect(received[0]!.args).toEqual(args);
  });

  it('waits for a promise that resolves later', async () => {
    let resolveAnswer: (value: unknown) => void = () => undefined;
    let arrived: () => void = () => undefined;
    const dispatched = new Promise<void>((resolve) => (arrived = resolve));
    handler = () =>
      new Promise((resolve) => {
        resolveAnswer = resolve;
        arrived();
      });
    const call = testing.simulateOrthancCall('later', '{}', 10_000);
    await dispatched;
    expect(await hasSettled(call)).toBe(false);
    resolveAnswer({ value: 7 });
    expect(await call).toEqual({ status: 'ok', result: '{"value":7}' });
  });

  it('fails with the message and stack of an Error thrown by the dispatcher', async () => {
    handler = () => {
      throw new Error('boom in the dispatcher');
    };
    const outcome = await testing.simulateOrthancCall('throws', '{}', 5000);
    expect(outcome.status).toBe('failed');
    expect(outcome.result).toBeUndefined();
    expect(outcome.error).toContain('Error: boom in the dispatcher');
    expect(outcome.error).toMatch(/\n\s+at /); // the stack

    handler = () => {
      throw 'a thrown string';
    };
    const thrownString = await testing.simulateOrthancCall('throws', '{}', 5000);
    expect(thrownString).toEqual({ status: 'failed', error: 'a thrown string' });
  });

  it('fails on a rejected promise', async () => {
    handler = () => Promise.reject(new Error('rejected at once'));
    const atOnce = await testing.simulateOrthancCall('rejects', '{}', 5000);
    expect(atOnce.status).toBe('failed');
    expect(atOnce.error).toContain('rejected at once');

    handler = async () => {
      await nextTurn();
      throw new RangeError('rejected later');
    };
    const later = await testing.simulateOrthancCall('rejects', '{}', 5000);
    expect(later.status).toBe('failed');
    expect(later.error).toContain('RangeError: rejected later');
  });

  it('fails, never waits for the timeout, on thrown or rejected values that cannot be described', async () => {
    handler = () => {
      throw Object.create(null);
    };
    const nullPrototype = await testing.simulateOrthancCall('undescribable', '{}', 30_000);
    expect(nullPrototype).toEqual({ status: 'failed', error: 'a JS value that cannot be described was thrown' });

    handler = () => {
      throw Symbol('thrown');
    };
    expect(await testing.simulateOrthancCall('symbol', '{}', 30_000)).toEqual({
      status: 'failed',
      error: 'a Symbol was thrown',
    });

    handler = () => Promise.reject(Symbol('rejected'));
    expect(await testing.simulateOrthancCall('symbol', '{}', 30_000)).toEqual({
      status: 'failed',
      error: 'a Symbol was thrown',
    });
  });

  it('fails on an answer that is not JSON', async () => {
    handler = () => undefined;
    const undefinedAnswer = await testing.simulateOrthancCall('noAnswer', '{}', 5000);
    expect(undefinedAnswer.status).toBe('failed');
    expect(undefinedAnswer.error).toMatch(/invalid answer from JS to "noAnswer"/);

    handler = async () => 1n;
    const bigint = await testing.simulateOrthancCall('bigint', '{}', 5000);
    expect(bigint.status).toBe('failed');
    expect(bigint.error).toMatch(/invalid answer from JS to "bigint"/);
  });

  it('fails without calling the dispatcher when the arguments cannot be built', async () => {
    let called = false;
    handler = () => (called = true);
    const outcome = await testing.simulateOrthancCall('badArguments', 'this is not JSON', 5000);
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toContain('SyntaxError');
    expect(called).toBe(false);
  });

  it('times out on a promise that never settles, and ignores its late answer', async () => {
    let lateAnswer: (value: unknown) => void = () => undefined;
    handler = () => new Promise((resolve) => (lateAnswer = resolve));
    const outcome = await testing.simulateOrthancCall('neverSettles', '{}', 100);
    expect(outcome.status).toBe('timedOut');
    expect(outcome.result).toBeUndefined();
    expect(outcome.error).toMatch(/did not answer "neverSettles" before its deadline/);

    // The abandoned call's promise settles after the caller has gone: nothing breaks.
    lateAnswer({ tooLate: true });
    await nextTurn();
    handler = () => 'still working';
    expect(await testing.simulateOrthancCall('afterTimeout', '{}', 5000)).toEqual({
      status: 'ok',
      result: '"still working"',
    });
  });

  it('completes many concurrent calls, each with its own result', async () => {
    handler = async (kind, args) => {
      await nextTurn();
      return { kind, doubled: (args.i as number) * 2 };
    };
    const count = 50;
    const outcomes = await Promise.all(
      Array.from({ length: count }, (_, i) => testing.simulateOrthancCall(`call-${i}`, JSON.stringify({ i }), 20_000)),
    );
    outcomes.forEach((outcome, i) => {
      expect(outcome).toEqual({ status: 'ok', result: JSON.stringify({ kind: `call-${i}`, doubled: i * 2 }) });
    });
  });

  it('serves callers on several threads at once', async () => {
    // No answer is given before all callers are waiting: with calls served one
    // at a time, the first would time out.
    const callers = 4;
    const arrivals: Array<() => void> = [];
    handler = (_kind, args) =>
      new Promise((resolve) => {
        arrivals.push(() => resolve(args.caller));
        if (arrivals.length === callers) for (const answer of arrivals) answer();
      });
    const outcomes = await Promise.all(
      Array.from({ length: callers }, (_, caller) =>
        testing.simulateOrthancCall('barrier', JSON.stringify({ caller }), 20_000),
      ),
    );
    expect(outcomes).toEqual(Array.from({ length: callers }, (_, caller) => ({ status: 'ok', result: `${caller}` })));
  });

  it('setDispatcher replaces the dispatcher', async () => {
    addon.setDispatcher(() => 'replacement');
    expect(await testing.simulateOrthancCall('replaced', '{}', 5000)).toEqual({
      status: 'ok',
      result: '"replacement"',
    });
    addon.setDispatcher(dispatcher as (kind: string, args: unknown) => unknown);
    handler = () => 'original';
    expect(await testing.simulateOrthancCall('restored', '{}', 5000)).toEqual({ status: 'ok', result: '"original"' });
  });

  it(
    'shutdownDispatcher fails a waiting call at once and refuses later calls',
    async () => {
      let arrived: () => void = () => undefined;
      const dispatched = new Promise<void>((resolve) => (arrived = resolve));
      handler = () => {
        arrived();
        return new Promise(() => undefined); // never settles
      };
      // A 30 s timeout, under a 10 s test timeout: only the shutdown can settle it in time.
      const waiting = testing.simulateOrthancCall('stuck', '{}', 30_000);
      await dispatched;
      expect(await hasSettled(waiting)).toBe(false);

      testing.shutdownDispatcher();
      const outcome = await waiting;
      expect(outcome.status).toBe('unavailable');
      expect(outcome.error).toMatch(/stopped before answering "stuck"/);

      handler = () => 'must not be called';
      const later = await testing.simulateOrthancCall('afterShutdown', '{}', 5000);
      expect(later.status).toBe('unavailable');
      expect(later.error).toMatch(/not running/);
    },
    10_000,
  );

  it('works again once a dispatcher is installed after the shutdown', async () => {
    addon.setDispatcher(dispatcher as (kind: string, args: unknown) => unknown);
    handler = (kind) => ({ back: kind });
    expect(await testing.simulateOrthancCall('reinstalled', '{}', 5000)).toEqual({
      status: 'ok',
      result: '{"back":"reinstalled"}',
    });
  });
});
