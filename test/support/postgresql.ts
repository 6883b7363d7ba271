// A throwaway PostgreSQL 17 server for a test file: initdb into a temporary directory,
// the server listening on 127.0.0.1 (a port from freePort; further addresses on request,
// e.g. for clients in another network namespace) and on a unix socket in that directory,
// a database and a role for Orthanc, all removed again by stop().
//
// PostgreSQL refuses to run as root: when the tests run as root (the Debian 13 sandbox),
// initdb, postgres and pg_ctl run as the `postgres` user (created by Debian's postgresql
// package), and the temporary directory belongs to that user.
//
// The server is started through a small shell that also watches a pipe from this
// process: when this process ends, however it ends (even SIGKILL), the pipe closes and
// the server gets SIGQUIT (immediate shutdown). The directory is removed on a normal
// exit of this process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './orthanc.js';

export const POSTGRESQL_BIN = '/usr/lib/postgresql/17/bin';

/** What a client needs to reach one database of the server. */
export interface PostgresDatabase {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
}

export interface RunningPostgres {
  /** The first of the addresses it listens on (127.0.0.1 by default). */
  host: string;
  port: number;
  /** The temporary directory: the data directory (`data/`) and the unix socket. */
  directory: string;
  /** The database created at start-up, owned by its own role (password authentication over TCP). */
  database: PostgresDatabase;
  /** Another database with its own role, e.g. for a second, independent cluster. */
  createDatabase(name: string): Promise<PostgresDatabase>;
  /** Runs SQL as the superuser (over the unix socket) in a database; resolves with psql's unaligned output. */
  sql(database: string, statement: string): Promise<string>;
  /** What the server wrote to stdout and stderr so far. */
  log(): string;
  /** pg_ctl stop -m fast, waits for the server's exit, removes the directory. */
  stop(): Promise<void>;
}

interface ProcessResult {
  code: number | null;
  output: string;
}

const running = new Set<{ child: ChildProcess; directory: string }>();

process.once('exit', () => {
  for (const { directory } of running) {
    // Immediate shutdown now (the watcher would send the same once this process is gone).
    try {
      process.kill(Number(readFileSync(join(directory, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGQUIT');
    } catch {
      // not running any more
    }
    rmSync(directory, { recursive: true, force: true });
  }
});

const stoppers = new Set<() => Promise<void>>();

/** Stops every server started by this process and removes their directories (for afterAll). */
export async function stopAllPostgres(): Promise<void> {
  await Promise.all([...stoppers].map((stop) => stop()));
}

/** The uid and gid to run PostgreSQL as: the `postgres` user when this process is root, else this process'. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === 'postgres');
  if (entry === undefined) {
    throw new Error('PostgreSQL cannot run as root, and there is no "postgres" user (Debian\'s postgresql package creates it)');
  }
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function run(
  command: string,
  args: string[],
  identity: { uid: number; gid: number } | undefined,
  timeoutMs = 60_000,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...identity,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function check(what: string, result: Promise<ProcessResult>): Promise<string> {
  const { code, output } = await result;
  if (code !== 0) throw new Error(`${what} failed (exit code ${code}):\n${output}`);
  return output;
}

const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;
const quoteIdentifier = (text: string) => `"${text.replace(/"/g, '""')}"`;

export interface PostgresOptions {
  /** The name of the database created at start-up (and of its role); "orthanc" by default. */
  database?: string;
  startTimeoutMs?: number;
  /**
   * The IP addresses the server listens on (`listen_addresses`), ["127.0.0.1"] by default;
   * clients are given the first. Each must be an address of this host already.
   */
  listenAddresses?: string[];
  /**
   * Further client addresses or networks (CIDR, e.g. "10.211.0.2/32") allowed to connect over
   * TCP with a password (pg_hba.conf, scram-sha-256); initdb allows 127.0.0.1 and ::1.
   */
  clientAddresses?: string[];
}

/**
 * Starts a PostgreSQL 17 server in a new temporary directory and creates a database
 * owned by a role of the same name, whose password is needed over TCP (scram-sha-256);
 * the superuser `postgres` connects over the unix socket only (trust).
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<RunningPostgres> {
  for (const tool of ['initdb', 'postgres', 'pg_ctl', 'pg_isready', 'psql']) {
    if (!existsSync(join(POSTGRESQL_BIN, tool))) {
      throw new Error(`${join(POSTGRESQL_BIN, tool)} is missing: the tests need Debian's postgresql (17) package`);
    }
  }
  const identity = serverIdentity();
  const directory = mkdtempSync(join(tmpdir(), 'postgresql-'));
  const dataDirectory = join(directory, 'data');
  const listenAddresses = options.listenAddresses ?? ['127.0.0.1'];
  const host = listenAddresses[0];
  if (host === undefined) throw new Error('startPostgres: listenAddresses is empty');
  const bin = (tool: string) => join(POSTGRESQL_BIN, tool);
  try {
    if (identity !== undefined) chownSync(directory, identity.uid, identity.gid);
    const superuserPassword = join(directory, 'superuser-password');
    writeFileSync(superuserPassword, `${randomPassword()}\n`, { mode: 0o600 });
    if (identity !== undefined) chownSync(superuserPassword, identity.uid, identity.gid);
    await check(
      'initdb',
      run(
        bin('initdb'),
        ['-D', dataDirectory, '--username=postgres', `--pwfile=${superuserPassword}`, '--auth-local=trust',
          '--auth-host=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'],
        identity,
      ),
    );
    rmSync(superuserPassword);
    const clients = options.clientAddresses ?? [];
    if (clients.length > 0) {
      appendFileSync(join(dataDirectory, 'pg_hba.conf'), clients.map((client) => `host all all ${client} scram-sha-256\n`).join(''));
    }
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }

  const port = await freePort();
  // A throwaway server: no durability needed (no fsync), which keeps a loaded machine fast.
  const serverArgs = [
    '-D', dataDirectory, '-p', String(port), '-k', directory, '-c', `listen_addresses=${listenAddresses.join(',')}`,
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200',
  ];
  // `exec 3<&0`: the watcher reads this process' pipe; at its end (this process is gone,
  // or stop() closed it), the server gets SIGQUIT if it still runs.
  const script = 'exec 3<&0; "$@" </dev/null & server=$!; (cat <&3 >/dev/null; kill -QUIT $server 2>/dev/null) & wait $server';
  const child = spawn('/bin/sh', ['-c', script, 'postgres-watchdog', bin('postgres'), ...serverArgs], {
    ...identity,
    cwd: directory,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const entry = { child, directory };
  running.add(entry);
  let logText = '';
  for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => (logText += chunk.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code) => {
      exitCode = code;
      resolve();
    });
    child.once('error', (error) => {
      logText += `\n${String(error)}`;
      exitCode = null;
      resolve();
    });
  });

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (exitCode === undefined) {
        await run(bin('pg_ctl'), ['stop', '-D', dataDirectory, '-m', 'fast', '-w', '-t', '60'], identity, 90_000).catch(() => undefined);
        child.stdin!.end(); // the watcher: SIGQUIT if pg_ctl could not stop it
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      child.stdin!.destroy();
      running.delete(entry);
      stoppers.delete(stop);
      rmSync(directory, { recursive: true, force: true });
    })());
  stoppers.add(stop);

  // Ready: pg_isready says the server accepts connections on the TCP port.
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exitCode !== undefined) {
      await stop();
      throw new Error(`PostgreSQL exited during start-up (code ${exitCode}):\n${logText}`);
    }
    const ready = await run(bin('pg_isready'), ['-h', host, '-p', String(port), '-d', 'postgres', '-t', '5'], identity, 10_000);
    if (ready.code === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`PostgreSQL did not accept connections in time (pg_isready: ${ready.output.trim()}):\n${logText}`);
    }
    await sleep(100);
  }

  const sql = (database: string, statement: string) =>
    check(
      `psql ${statement}`,
      run(bin('psql'), ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', directory, '-p', String(port), '-U', 'postgres',
        '-d', database, '-c', statement], identity),
    );
  const createDatabase = async (name: string): Promise<PostgresDatabase> => {
    const password = randomPassword();
    await sql('postgres', `CREATE ROLE ${quoteIdentifier(name)} LOGIN PASSWORD ${quoteLiteral(password)}`);
    await sql('postgres', `CREATE DATABASE ${quoteIdentifier(name)} OWNER ${quoteIdentifier(name)} ENCODING 'UTF8'`);
    return { host, port, database: name, username: name, password };
  };

  try {
    const database = await createDatabase(options.database ?? 'orthanc');
    return { host, port, directory, database, createDatabase, sql, log: () => logText, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function randomPassword(): string {
  return `pw-${randomUUID()}`;
}
