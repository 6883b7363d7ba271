// The Debian package (scripts/package.sh) in a clean Debian 13 system: Debian's orthanc
// with its stock MultitenantDicom plugin, nothing of this project. The test builds the
// .deb, copies the clean root filesystem that scripts/debian13.sh prepared (MTD_CLEAN_ROOTFS,
// read-only), and in the copy runs the real dpkg and Debian's Orthanc, as root in a mount
// namespace of their own (`unshare --root`, with a /proc of their own). The copy shares this
// process' network namespace: the test talks to that Orthanc over loopback with curl-like
// fetches and DCMTK's echoscu from outside the copy.
//
// Tests have no network: the clean system holds libnode115 (the one Depends that orthanc
// does not pull) so that `dpkg -i` is satisfied offline, and orthanc's own .deb (in
// /root/debs) to reinstall it over our diversion, as an orthanc upgrade would.
//
// Orthanc runs as the service runs it (user orthanc, `Orthanc /etc/orthanc`, every
// /etc/orthanc/*.json of Debian's), with one more file, /etc/orthanc/multitenant-dicom.json
// (one tenant), and HttpPort and DicomPort changed to free ports in Debian's orthanc.json.
// The copy has a policy-rc.d that denies every service action (as in any chroot): the
// "orthanc-restart-trigger" of the package still runs, but starts no Orthanc service.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoOutcome, echoscu } from '../support/dcmtk.js';
import { canConnect, freePort } from '../support/orthanc.js';
import { listeningLine, literal, PACKAGE_VERSION, PLUGIN_ID, PLUGIN_PATH } from '../support/plugin.js';

const PROJECT = fileURLToPath(new URL('../..', import.meta.url));
const CLEAN_ROOTFS = process.env['MTD_CLEAN_ROOTFS'];
const SKIP_REASON =
  process.getuid?.() !== 0
    ? 'needs root: it runs dpkg and Orthanc in a copy of a Debian root filesystem (unshare --root)'
    : CLEAN_ROOTFS === undefined
      ? 'no clean Debian 13 environment: MTD_CLEAN_ROOTFS is set by scripts/debian13.sh --private-network ' +
        '(npm test) when run as root'
      : undefined;

const NAME = 'orthanc-multitenant-dicom';
const DEBIAN_VERSION = PACKAGE_VERSION.replace('-', '~');
const PLUGINS = '/usr/share/orthanc/plugins';
const STOCK = `${PLUGINS}/libMultitenantDicom.so`;
const DIVERTED = '/usr/share/orthanc/plugins-disabled/libMultitenantDicom.so';
const OURS = `${PLUGINS}/libOrthancMultitenantDicom.so`;
const DIVERSION = `diversion of ${STOCK} to ${DIVERTED} by ${NAME}`;
const TENANT_AET = 'TENANT_A';
/** The conffile the test changes (ports): dpkg --verify reports it, nothing else may be reported. */
const CHANGED_CONFFILE = '/etc/orthanc/orthanc.json';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = process.env as Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : error.code;
      if (typeof code === 'string') reject(error ?? new Error(code));
      else resolve({ code: code ?? null, stdout, stderr });
    });
  });
}

/** What the commands in the copy see: the environment of a root shell, nothing of the test's. */
const SYSTEM_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' };

/**
 * The mount propagation for `unshare --mount`: private when / is a mount point (a host:
 * the /proc of the copy must not propagate to the host's namespace); in the Debian 13
 * sandbox / is a chroot directory (unshare cannot make it private) and every mount is
 * already private, so "unchanged" is as safe there.
 */
function propagation(): 'private' | 'unchanged' {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((line) => line.split(' '));
  if (mounts.some((fields) => fields[4] === '/')) return 'private';
  const shared = mounts.filter((fields) => fields.slice(6, fields.indexOf('-')).some((tag) => tag.startsWith('shared:')));
  if (shared.length > 0) throw new Error(`/ is no mount point and some mounts are shared: ${shared[0]!.join(' ')}`);
  return 'unchanged';
}

let copy = '';
let work = '';
let deb = '';
let httpPort = 0;
let dicomPort = 0;
let tenantPort = 0;
/** The stock plugin as the clean system has it: a symbolic link into /usr/lib/orthanc. */
let stockLinkTarget = '';
const orthancs = new Set<ChildProcess>();

/** The command line that runs a command as root in the copy, with its own /proc. */
function inCopy(command: string[]): [string, string[]] {
  return ['unshare', ['--mount', `--propagation=${propagation()}`, `--root=${copy}`, '--mount-proc', '--', ...command]];
}

function inside(path: string): string {
  return join(copy, path);
}

async function runInCopy(...command: string[]): Promise<Run> {
  const [program, args] = inCopy(command);
  return run(program, args, SYSTEM_ENV);
}

/** Runs dpkg in the copy; fails the test with dpkg's output if dpkg fails. */
async function dpkg(...args: string[]): Promise<string> {
  const result = await runInCopy('dpkg', ...args);
  const output = result.stdout + result.stderr;
  expect(result.code, `dpkg ${args.join(' ')}:\n${output}`).toBe(0);
  return output;
}

async function diversions(): Promise<string[]> {
  const result = await runInCopy('dpkg-divert', '--list', '*MultitenantDicom*');
  expect(result.code).toBe(0);
  return result.stdout.split('\n').filter((line) => line !== '');
}

/** dpkg --verify's complaints about these packages, but for the conffile the test changed. */
async function verify(...packages: string[]): Promise<string[]> {
  const result = await runInCopy('dpkg', '--verify', ...packages);
  return (result.stdout + result.stderr).split('\n').filter((line) => line !== '' && !line.endsWith(` ${CHANGED_CONFFILE}`));
}

function isPresent(path: string): boolean {
  try {
    lstatSync(inside(path));
    return true;
  } catch {
    return false;
  }
}

interface DebianOrthanc {
  log(): string;
  get(path: string): Promise<{ status: number; body: unknown }>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Starts Debian's Orthanc in the copy as its service does (user orthanc, /etc/orthanc), logging
 * to stderr; resolves once its HTTP server answers and `ports` accept connections, or once it
 * has exited.
 */
async function startDebianOrthanc(ports: number[]): Promise<DebianOrthanc & { outcome: 'ready' | 'exited' }> {
  const [program, args] = inCopy(['chroot', '--userspec=orthanc:orthanc', '/', '/usr/sbin/Orthanc', '/etc/orthanc']);
  const child = spawn(program, args, { env: SYSTEM_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  orthancs.add(child);
  let text = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
  }
  let hasExited = false;
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      hasExited = true;
      orthancs.delete(child);
      resolve(code);
    });
  });
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${httpPort}${path}`);
    return { status: response.status, body: (await response.json()) as unknown };
  };
  const orthanc: DebianOrthanc = {
    log: () => text,
    get,
    exited,
    stop: async () => {
      if (!hasExited) child.kill('SIGTERM');
      return exited;
    },
  };
  const deadline = performance.now() + 60_000;
  const answers = async () => (await get('/system').catch(() => undefined))?.status === 200;
  while (!hasExited && !(await answers())) {
    if (performance.now() > deadline) throw new Error(`Orthanc did not answer HTTP in time:\n${text}`);
    await sleep(50);
  }
  for (const port of ports) {
    while (!hasExited && !(await canConnect(port))) {
      if (performance.now() > deadline) throw new Error(`nothing listens on port ${port}:\n${text}`);
      await sleep(50);
    }
  }
  if (hasExited) await exited; // the log is complete
  return { ...orthanc, outcome: hasExited ? 'exited' : 'ready' };
}

function registrations(log: string): string[] {
  return [...log.matchAll(/Registering plugin '([^']+)' \(version ([^)]+)\)/g)]
    .filter((match) => match[1] === PLUGIN_ID)
    .map((match) => match[2]!);
}

async function echoTenant(): Promise<string> {
  return echoOutcome(await echoscu({ port: tenantPort, calledAet: TENANT_AET, callingAet: 'PACKAGE_TEST' }));
}

beforeAll(async () => {
  if (SKIP_REASON !== undefined) return;
  work = mkdtempSync(join(tmpdir(), 'debian-package-'));

  const packaged = await run(join(PROJECT, 'scripts/package.sh'), [work]);
  expect(packaged.code, packaged.stderr).toBe(0);
  deb = packaged.stdout.trim().split('\n').at(-1)!;

  // A writable copy of the clean system (the cached one stays as built).
  copy = join(work, 'rootfs');
  const copied = await run('cp', ['-a', `${CLEAN_ROOTFS}/.`, `${copy}/`]);
  expect(copied.code, copied.stderr).toBe(0);
  chmodSync(copy, 0o755);
  writeFileSync(inside('/usr/sbin/policy-rc.d'), '#!/bin/sh\n# No service starts in this copy.\nexit 101\n', { mode: 0o755 });
  copyFileSync(deb, inside(`/tmp/${basename(deb)}`));
  stockLinkTarget = readlinkSync(inside(STOCK));

  [httpPort, dicomPort, tenantPort] = [await freePort(), await freePort(), await freePort()];
  const configuration = readFileSync(inside(CHANGED_CONFFILE), 'utf8');
  const changed = configuration
    .replace(/("HttpPort"\s*:\s*)8042\b/, `$1${httpPort}`)
    .replace(/("DicomPort"\s*:\s*)4242\b/, `$1${dicomPort}`);
  expect(changed.match(new RegExp(`"HttpPort"\\s*:\\s*${httpPort}\\b`))).not.toBeNull();
  expect(changed.match(new RegExp(`"DicomPort"\\s*:\\s*${dicomPort}\\b`))).not.toBeNull();
  writeFileSync(inside(CHANGED_CONFFILE), changed);
  writeFileSync(
    inside('/etc/orthanc/multitenant-dicom.json'),
    JSON.stringify({ MultitenantDicom: { Servers: [{ AET: TENANT_AET, Port: tenantPort, Labels: ['tenant-a'] }] } }, null, 2),
    { mode: 0o644 },
  );
}, 300_000);

afterAll(async () => {
  for (const child of orthancs) child.kill('SIGKILL');
  await Promise.all([...orthancs].map((child) => new Promise((resolve) => child.once('close', resolve))));
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('the Debian package in a clean Debian 13 with Debian\'s orthanc', () => {
  it('is named after package.json\'s version, owned by root, with its md5sums, Installed-Size and Depends', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    const architecture = (await run('dpkg', ['--print-architecture'])).stdout.trim();
    expect(basename(deb)).toBe(`${NAME}_${DEBIAN_VERSION}_${architecture}.deb`);

    const field = async (name: string) => (await run('dpkg-deb', ['--field', deb, name])).stdout.trim();
    expect(await field('Package')).toBe(NAME);
    expect(await field('Version')).toBe(DEBIAN_VERSION);
    expect(await field('Architecture')).toBe(architecture);
    const depends = (await field('Depends')).split(/,\s*/);
    expect(depends[0]).toBe('orthanc (>= 1.12)');
    expect(depends.some((dependency) => /^libnode115( |$)/.test(dependency))).toBe(true);

    // dpkg-deb --contents: "perms owner/group size date time path".
    const contents = (await run('dpkg-deb', ['--contents', deb])).stdout.trim().split('\n').map((line) => line.split(/\s+/));
    expect(new Set(contents.map((fields) => fields[1]))).toEqual(new Set(['root/root']));
    const files = contents.filter((fields) => fields[0]!.startsWith('-'));
    expect(files.map((fields) => fields[5]).sort()).toEqual([
      `./usr/share/doc/${NAME}/copyright`,
      `.${OURS}`,
    ]);
    expect(files.every((fields) => fields[0] === '-rw-r--r--')).toBe(true);
    const kib = contents.reduce((total, fields) => total + (fields[0]!.startsWith('d') ? 1 : Math.ceil(Number(fields[2]) / 1024)), 0);
    expect(Number(await field('Installed-Size'))).toBe(kib);

    const control = join(work, 'control');
    expect((await run('dpkg-deb', ['--control', deb, control])).code).toBe(0);
    const md5sums = readFileSync(join(control, 'md5sums'), 'utf8').trim().split('\n').map((line) => line.split(/\s+/)[1]);
    expect(md5sums.sort()).toEqual(files.map((fields) => fields[5]!.slice(2)).sort());
    for (const script of ['preinst', 'postrm']) {
      expect(statSync(join(control, script)).mode & 0o777).toBe(0o755);
    }
    expect(readFileSync(join(control, 'triggers'), 'utf8')).toMatch(/^activate-await orthanc-restart-trigger$/m);
  });

  it('shows the problem first: our plugin copied beside the stock one stops Orthanc ("already registered")', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    expect(readlinkSync(inside(STOCK))).toBe(stockLinkTarget);
    copyFileSync(PLUGIN_PATH, inside(OURS));
    chmodSync(inside(OURS), 0o644);
    try {
      const orthanc = await startDebianOrthanc([]);
      expect(orthanc.outcome, orthanc.log()).toBe('exited');
      expect(await orthanc.exited).not.toBe(0);
      expect(orthanc.log()).toMatch(/already registered/);
    } finally {
      rmSync(inside(OURS));
    }
  }, 120_000);

  it('dpkg -i diverts the stock plugin out of the plugins folder, installs ours, and triggers the Orthanc restart', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    expect(await diversions()).toEqual([]);

    const output = await dpkg('-i', `/tmp/${basename(deb)}`);
    expect(output).toContain(`Setting up ${NAME} (${DEBIAN_VERSION})`);
    expect(output).toMatch(/Processing triggers for orthanc .*\n.*orthanc-restart-trigger: restarting the Orthanc service/);

    expect(await diversions()).toEqual([DIVERSION]);
    expect(isPresent(STOCK)).toBe(false);
    expect(readlinkSync(inside(DIVERTED))).toBe(stockLinkTarget);
    expect(existsSync(inside(DIVERTED))).toBe(true); // the link still leads to the stock library
    expect(statSync(inside(OURS)).mode & 0o777).toBe(0o644);
    expect((await runInCopy('dpkg', '-S', OURS)).stdout.trim()).toBe(`${NAME}: ${OURS}`);
    expect(readFileSync(inside(`/usr/share/doc/${NAME}/copyright`), 'utf8')).toContain('GPL-3.0-or-later');
    // Every file of both packages where dpkg expects it (the stock plugin at its diverted path).
    expect(await verify('orthanc', NAME)).toEqual([]);
  }, 120_000);

  it('keeps the stock plugin out when our package is installed again and when Debian\'s orthanc is reinstalled', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    expect(await dpkg('-i', `/tmp/${basename(deb)}`)).toContain(`Unpacking ${NAME} (${DEBIAN_VERSION}) over (${DEBIAN_VERSION})`);
    expect(await diversions()).toEqual([DIVERSION]);

    // As an orthanc upgrade would: dpkg unpacks the stock plugin again, to the diverted path.
    const orthancDebs = (await runInCopy('sh', '-c', 'ls /root/debs/orthanc_*.deb')).stdout.trim().split('\n');
    expect(orthancDebs).toHaveLength(1);
    expect(await dpkg('--force-confold', '-i', orthancDebs[0]!)).toMatch(/Unpacking orthanc /);
    expect(isPresent(STOCK)).toBe(false);
    expect(readlinkSync(inside(DIVERTED))).toBe(stockLinkTarget);
    expect(isPresent(OURS)).toBe(true);
    expect(await diversions()).toEqual([DIVERSION]);
    expect(await verify('orthanc', NAME)).toEqual([]);
  }, 180_000);

  it('Orthanc with Debian\'s configuration loads our plugin alone: it answers C-ECHO on the tenant port and GET /plugins', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    const orthanc = await startDebianOrthanc([tenantPort]);
    expect(orthanc.outcome, orthanc.log()).toBe('ready');

    const plugin = await orthanc.get(`/plugins/${PLUGIN_ID}`);
    expect(plugin.status).toBe(200);
    expect(plugin.body).toMatchObject({ ID: PLUGIN_ID, Version: PACKAGE_VERSION, Description: expect.stringMatching(/TypeScript/) });
    expect(registrations(orthanc.log())).toEqual([PACKAGE_VERSION]);
    expect(orthanc.log()).not.toMatch(/already registered/);
    expect(orthanc.log()).toMatch(literal(listeningLine(0, TENANT_AET, tenantPort)));

    expect(await echoTenant()).toBe('accepted');
    expect(await orthanc.stop()).toBe(0);
  }, 120_000);

  it('dpkg --remove brings the stock plugin back to its place, and Orthanc starts with it', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    const output = await dpkg('--remove', NAME);
    expect(output).toContain(`Removing 'diversion of ${STOCK} to ${DIVERTED} by ${NAME}'`);
    expect(output).toMatch(/Processing triggers for orthanc .*\n.*orthanc-restart-trigger: restarting the Orthanc service/);

    expect(await diversions()).toEqual([]);
    expect(readlinkSync(inside(STOCK))).toBe(stockLinkTarget);
    expect(existsSync(inside(STOCK))).toBe(true);
    expect(isPresent(OURS)).toBe(false);
    expect(isPresent('/usr/share/orthanc/plugins-disabled')).toBe(false);
    expect(await verify('orthanc')).toEqual([]);

    const orthanc = await startDebianOrthanc([tenantPort]);
    expect(orthanc.outcome, orthanc.log()).toBe('ready');
    const system = await orthanc.get('/system');
    const orthancVersion = (system.body as { Version: string }).Version;
    const plugin = await orthanc.get(`/plugins/${PLUGIN_ID}`);
    expect(plugin.status).toBe(200);
    // The stock plugin carries Orthanc's version, and no word of TypeScript.
    expect(plugin.body).toMatchObject({ ID: PLUGIN_ID, Version: orthancVersion });
    expect(orthancVersion).not.toBe(PACKAGE_VERSION);
    expect((plugin.body as { Description?: string }).Description ?? '').not.toMatch(/TypeScript/);
    expect(registrations(orthanc.log())).toEqual([orthancVersion]);
    expect(orthanc.log()).not.toMatch(/already registered/);

    expect(await echoTenant()).toBe('accepted');
    expect(await orthanc.stop()).toBe(0);
  }, 120_000);

  it('dpkg --purge then leaves no trace of the package', async ({ skip }) => {
    skip(SKIP_REASON !== undefined, SKIP_REASON);
    await dpkg('--purge', NAME);
    expect((await runInCopy('dpkg-query', '-W', NAME)).code).not.toBe(0);
    expect(await diversions()).toEqual([]);
    expect(readlinkSync(inside(STOCK))).toBe(stockLinkTarget);
    expect(isPresent(`/usr/share/doc/${NAME}`)).toBe(false);
  }, 60_000);
});
