// A network namespace that stands for another host, for a process (e.g. a second Orthanc
// node) that must own ports that this process' namespace uses too: a process that holds
// a new network namespace (`unshare --net`), a veth pair between this process' network
// namespace and it, an IPv4 address on each end, and the loopback up inside. The test
// reaches the processes inside at `address`; they reach the test's servers (PostgreSQL, a
// storescp) at `hostAddress`.
//
// Processes enter it with `nsenter --net=/proc/PID/ns/net`. Not `ip netns`: `ip netns
// exec` first remounts / as a slave mount, which fails in the chroot of
// scripts/debian13.sh's sandbox, where / is no mount point, and `ip netns add` leaves a
// shared mount of /run/netns behind. Only the network namespace changes: the processes
// inside share everything else (files, users, /proc) with this one.
//
// It needs root (CAP_NET_ADMIN), and runs only in a private network namespace
// (`scripts/debian13.sh --private-network` sets MTD_NETWORK_PRIVATE=1): it adds a link and
// addresses, which must never reach a real host's network. remove() deletes the link and
// the namespace; so does an exit of this process.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { waitUntil } from './wait.js';

export interface NetworkNamespace {
  /** How it is named in messages. */
  name: string;
  /** The address of this process' end of the link: the test's servers as the namespace reaches them. */
  hostAddress: string;
  /** The address of the namespace's end of the link: its processes as the test reaches them. */
  address: string;
  /** The command line that runs `command` inside the namespace. */
  command(command: string, args: string[]): { command: string; args: string[] };
  /** Deletes the link and the namespace (once the processes inside have exited, the kernel frees it). */
  remove(): Promise<void>;
}

export interface NetworkNamespaceOptions {
  hostAddress: string;
  address: string;
  /** The prefix length of both addresses; 24 by default. */
  prefixLength?: number;
}

/** Why a network namespace cannot be made here, or undefined if it can. */
function networkNamespaceProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (process.env['MTD_NETWORK_PRIVATE'] !== '1') {
    return 'a veth pair and its addresses are only added in a private network namespace (run under scripts/debian13.sh --private-network, as root)';
  }
  return undefined;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`${[command, ...args].join(' ')} failed: ${stderr.trim() || error.message}`));
    });
  });
}

const removers = new Set<() => void>();
process.once('exit', () => {
  for (const remove of removers) remove();
});

/** The network namespace a process is in, as /proc names it ("net:[4026531840]"). */
function networkNamespaceOf(pid: number | 'self'): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return '';
  }
}

export async function createNetworkNamespace(options: NetworkNamespaceOptions): Promise<NetworkNamespace> {
  const problem = networkNamespaceProblem();
  if (problem !== undefined) throw new Error(`Cannot make a network namespace: ${problem}`);
  // Random: sandboxes running at the same time share the host's network interfaces' names.
  const suffix = randomBytes(3).toString('hex');
  const hostLink = `mtd${suffix}h`; // interface names: at most 15 characters
  const innerLink = `mtd${suffix}n`;
  const prefix = options.prefixLength ?? 24;
  // A process holds the namespace (no `ip netns add`: it leaves a shared mount of /run/netns
  // behind, which the package test's clean chroot refuses).
  const holder = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
  const pid = holder.pid!;
  const path = `/proc/${pid}/ns/net`;
  const inside = (command: string, args: string[]) => ({ command: 'nsenter', args: [`--net=${path}`, '--', command, ...args] });
  const runInside = (command: string, args: string[]) => {
    const line = inside(command, args);
    return run(line.command, line.args);
  };

  const removeNow = () => {
    holder.kill('SIGKILL');
    try {
      execFileSync('ip', ['link', 'del', hostLink], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already gone
    }
  };
  removers.add(removeNow);
  try {
    // unshare makes the namespace a moment after it starts.
    await waitUntil(`unshare --net (pid ${pid}) to enter its namespace`, async () => {
      const own = networkNamespaceOf(pid);
      return own !== '' && own !== networkNamespaceOf('self');
    });
    await run('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', innerLink]);
    await run('ip', ['link', 'set', innerLink, 'netns', String(pid)]);
    await run('ip', ['address', 'add', `${options.hostAddress}/${prefix}`, 'dev', hostLink]);
    await run('ip', ['link', 'set', hostLink, 'up']);
    await runInside('ip', ['address', 'add', `${options.address}/${prefix}`, 'dev', innerLink]);
    await runInside('ip', ['link', 'set', innerLink, 'up']);
    await runInside('ip', ['link', 'set', 'lo', 'up']);
  } catch (error) {
    removeNow();
    removers.delete(removeNow);
    throw error;
  }

  let removed: Promise<void> | undefined;
  const remove = () =>
    (removed ??= (async () => {
      removers.delete(removeNow);
      // Deleting one end of a veth pair deletes the other; the namespace goes with its last process.
      await run('ip', ['link', 'del', hostLink]).catch(() => undefined);
      holder.kill('SIGKILL');
    })());
  return { name: `unshare pid ${pid}`, hostAddress: options.hostAddress, address: options.address, command: inside, remove };
}
