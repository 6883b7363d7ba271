// Starts real Orthanc processes for integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NetworkNamespace } from './network-namespace.js';

export interface OrthancOptions {
  /** Orthanc's JSON configuration; ports, storage, access and `Plugins` are filled in unless given here. */
  configuration: Record<string, unknown>;
  /** Paths of plugin shared libraries. */
  plugins?: string[];
  env?: Record<string, string>;
  /** The caller expects Orthanc to exit by itself: don't fail if it does, await `exited`. */
  expectExit?: boolean;
  /** Extra TCP ports (e.g. tenant DICOM servers) that must accept connections before returning. */
  waitForPorts?: number[];
  startTimeoutMs?: number;
  /**
   * Runs Orthanc in this network namespace, as on another host: its ports are the
   * namespace's, and the REST client and the port checks reach it at the namespace's address.
   */
  networkNamespace?: NetworkNamespace;
}

export interface OrthancExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
}

export interface RestResponse<T = unknown> {
  status: number;
  /** Parsed JSON, text, or a Buffer for binary answers. */
  body: T;
}

export interface RunningOrthanc {
  /** The process id, to look at its file descriptors in /proc. */
  pid: number;
  /** The address its HTTP and DICOM ports are reached at (127.0.0.1 unless it runs in another network namespace). */
  host: string;
  httpPort: number;
  dicomPort: number;
  /** The temporary directory holding the configuration, the storage and the index. */
  directory: string;
  /** The configuration as written, with the harness' defaults. */
  configuration: Record<string, unknown>;
  /** `body`: a string or bytes as is, anything else as JSON. */
  rest<T = unknown>(method: string, path: string, body?: unknown): Promise<RestResponse<T>>;
  /** Everything Orthanc wrote so far to stdout and stderr. */
  log(): string;
  /**
   * Resolves with the first match in the log (from character `since` on, e.g. a former
   * `log().length`; the whole log by default); rejects on timeout or exit.
   */
  waitForLog(pattern: RegExp, timeoutMs?: number, since?: number): Promise<RegExpMatchArray>;
  /** Signals Orthanc and waits for its exit; durationMs is the time from the signal to the exit. */
  stop(signal?: NodeJS.Signals): Promise<OrthancExit>;
  /** Orthanc's exit; durationMs is its whole lifetime. */
  exited: Promise<OrthancExit>;
}

const ORTHANC_BINARY = 'Orthanc';

/**
 * Waits until the process catches `signal` (its bit in SigCgt of /proc/PID/status): Orthanc
 * installs its handlers only after the plugins heard that it started, so a signal sent as
 * soon as the tenants' ports open could still end it by the default action.
 */
async function catchesSignal(pid: number | undefined, signal: NodeJS.Signals, exited: () => boolean): Promise<void> {
  const bit = BigInt(1) << BigInt(constants.signals[signal] - 1);
  const deadline = performance.now() + 10_000;
  while (pid !== undefined && !exited() && performance.now() < deadline) {
    let caught: bigint;
    try {
      caught = BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0'}`);
    } catch {
      return; // gone: the signal changes nothing
    }
    if ((caught & bit) !== BigInt(0)) return;
    await sleep(10);
  }
}
const KILL_AFTER_MS = 30_000;

const running = new Set<{ child: ChildProcess; stop(): Promise<OrthancExit> }>();
const directories = new Set<string>();

function removeDirectories(): void {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  directories.clear();
}

process.once('exit', () => {
  for (const { child } of running) child.kill('SIGKILL');
  removeDirectories();
});

/** Stops every Orthanc still running and removes their temporary directories (for afterAll). */
export async function stopAllOrthancs(): Promise<void> {
  await Promise.all([...running].map((orthanc) => orthanc.stop()));
  removeDirectories();
}

const EPHEMERAL = (() => {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    return [32768, 60999];
  }
})();
let nextPort = 0;

/**
 * A TCP port that is free now and that this process has not handed out before, outside
 * the range the OS picks outgoing ports from (asking the OS for port 0 can repeat a port,
 * or give one that a client connection takes a moment later).
 */
export async function freePort(): Promise<number> {
  const [low = 32768, high = 60999] = EPHEMERAL;
  const [first, last] = low > 12_000 ? [10_000, low - 1] : [high + 1, 65_535];
  if (nextPort === 0) nextPort = first + Math.floor(Math.random() * (last - first - 1_000));
  while (nextPort <= last) {
    const port = nextPort++;
    if (await isFree(port)) return port;
  }
  throw new Error('no free TCP port left');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** Whether something accepts connections on this port of 127.0.0.1 (or of `host`). */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function encodeBody(body: unknown): RequestInit {
  if (body === undefined) return {};
  if (typeof body === 'string') return { body };
  if (body instanceof Uint8Array) return { body: new Uint8Array(body) };
  return { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
}

async function decodeBody(response: Response): Promise<unknown> {
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    const text = await response.text();
    return text === '' ? undefined : JSON.parse(text);
  }
  if (type.startsWith('text/')) return response.text();
  return Buffer.from(await response.arrayBuffer());
}

async function writeConfiguration(options: OrthancOptions) {
  const directory = mkdtempSync(join(tmpdir(), 'orthanc-'));
  directories.add(directory);
  const configuration: Record<string, unknown> = {
    Name: 'test',
    HttpPort: await freePort(),
    DicomPort: await freePort(),
    StorageDirectory: join(directory, 'storage'),
    IndexDirectory: join(directory, 'storage'),
    RemoteAccessAllowed: true,
    AuthenticationEnabled: false,
    ...options.configuration,
    Plugins: options.plugins ?? options.configuration['Plugins'] ?? [],
  };
  const path = join(directory, 'configuration.json');
  writeFileSync(path, JSON.stringify(configuration, null, 2));
  return { directory, configuration, path };
}

export async function startOrthanc(options: OrthancOptions): Promise<RunningOrthanc> {
  const { directory, configuration, path } = await writeConfiguration(options);
  const httpPort = configuration['HttpPort'] as number;
  const dicomPort = configuration['DicomPort'] as number;
  const host = options.networkNamespace?.address ?? '127.0.0.1';
  const command = options.networkNamespace?.command(ORTHANC_BINARY, ['--verbose', path]) ?? { command: ORTHANC_BINARY, args: ['--verbose', path] };

  const startedAt = performance.now();
  const child = spawn(command.command, command.args, {
    cwd: directory,
    env: { ...process.env, TCP_NODELAY: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let logText = '';
  const logListeners = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      logText += chunk;
      for (const listener of logListeners) listener();
    });
  }
  const log = () => logText;

  let hasExited = false;
  const exited = new Promise<OrthancExit>((resolve, reject) => {
    child.once('error', (error) => {
      hasExited = true; // e.g. ENOENT: Orthanc is not installed
      reject(error);
    });
    // 'close' rather than 'exit': the log is complete once the pipes are closed.
    child.once('close', (code, signal) => {
      hasExited = true;
      resolve({ code, signal, durationMs: performance.now() - startedAt });
    });
  });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<OrthancExit> => {
    if (hasExited) return { ...(await exited), durationMs: 0 };
    if (signal !== 'SIGKILL') await catchesSignal(child.pid, signal, () => hasExited);
    const signalledAt = performance.now();
    child.kill(signal);
    const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    try {
      return { ...(await exited), durationMs: performance.now() - signalledAt };
    } finally {
      clearTimeout(killer);
    }
  };

  const entry = { child, stop: () => stop() };
  running.add(entry);
  exited.finally(() => running.delete(entry)).catch(() => {});

  const waitForLog = (pattern: RegExp, timeoutMs = 10_000, since = 0) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        logListeners.delete(check);
        outcome();
      };
      const check = () => {
        const match = logText.slice(since).match(pattern);
        if (match) finish(() => resolve(match));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`Timeout waiting for ${pattern} in the Orthanc log:\n${logText}`))),
        timeoutMs,
      );
      logListeners.add(check);
      check();
      const onExit = () => {
        if (logListeners.has(check)) {
          finish(() => reject(new Error(`Orthanc exited before ${pattern} appeared in its log:\n${logText}`)));
        }
      };
      exited.then(onExit, onExit);
    });

  const rest = async <T = unknown>(method: string, path: string, body?: unknown): Promise<RestResponse<T>> => {
    const response = await fetch(`http://${host}:${httpPort}${path}`, { method, ...encodeBody(body) });
    return { status: response.status, body: (await decodeBody(response)) as T };
  };

  const orthanc: RunningOrthanc = { pid: child.pid!, host, httpPort, dicomPort, directory, configuration, rest, log, waitForLog, stop, exited };

  const outcome = await Promise.race([
    waitUntilReady(orthanc, options.waitForPorts ?? [], () => hasExited),
    sleep(options.startTimeoutMs ?? 60_000, 'timeout' as const, { ref: false }),
  ]);
  if (outcome === 'ready' || (outcome === 'exited' && options.expectExit)) {
    return orthanc;
  }
  await stop('SIGKILL');
  const exit = await exited;
  throw new Error(
    outcome === 'exited'
      ? `Orthanc exited during startup (code ${exit.code}, signal ${exit.signal}):\n${logText}`
      : `Orthanc did not become ready in time:\n${logText}`,
  );
}

async function waitUntilReady(
  orthanc: RunningOrthanc,
  ports: number[],
  hasExited: () => boolean,
): Promise<'ready' | 'exited'> {
  const answersHttp = async () => (await orthanc.rest('GET', '/system').catch(() => undefined))?.status === 200;
  while (!hasExited() && !(await answersHttp())) await sleep(50);
  for (const port of ports) {
    while (!hasExited() && !(await canConnect(port, orthanc.host))) await sleep(50);
  }
  return hasExited() ? 'exited' : 'ready';
}
