// The plugin under test, as the integration tests start it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The plugin built by scripts/build.sh (absolute: Orthanc runs in a temporary directory). */
export const PLUGIN_PATH = fileURLToPath(new URL('../../build/libOrthancMultitenantDicom.so', import.meta.url));

/** Orthanc's stock C++ plugin with the same configuration section, for comparisons. */
export const STOCK_PLUGIN_PATH = '/usr/share/orthanc/plugins/libMultitenantDicom.so';

export const PLUGIN_ID = 'multitenant-dicom';

export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface TenantServer {
  AET: string;
  Port: number;
  Labels: string[];
  [key: string]: unknown;
}

/** A `MultitenantDicom.Servers` entry. */
export function tenantServer(aet: string, port: number, fields: Record<string, unknown> = {}): TenantServer {
  return { AET: aet, Port: port, Labels: [`label-${aet.toLowerCase().replace(/[^a-z0-9_-]/g, '_')}`], ...fields };
}

/** The configuration section for these servers. */
export function multitenantSection(...servers: TenantServer[]): { MultitenantDicom: { Servers: TenantServer[] } } {
  return { MultitenantDicom: { Servers: servers } };
}

/** How the plugin names a tenant in its log lines. */
export function tenantName(index: number, aet: string): string {
  return `MultitenantDicom.Servers[${index}] (AET "${aet}")`;
}

export function listeningLine(index: number, aet: string, port: number): string {
  return `${tenantName(index, aet)}: multitenant DICOM server listening on port ${port}`;
}

export interface LogLine {
  /** I, W, E, F or T. */
  level: string;
  /** Where it comes from, e.g. "main.cpp:946" or "multitenant-dicom:/dicom_servers.cpp:121". */
  source: string;
  message: string;
}

const LOG_PREFIX = /^([IWEFT])\d{4} \d\d:\d\d:\d\d\.\d+ +\S+ ([^\]]*)\] (.*)$/;

/** Orthanc's log lines (glog format), without their prefix; continuation lines are dropped. */
export function logLines(log: string): LogLine[] {
  return log.split('\n').flatMap((line) => {
    const match = line.match(LOG_PREFIX);
    return match ? [{ level: match[1]!, source: match[2]!, message: match[3]! }] : [];
  });
}

/** The messages of the log lines, optionally of one level only. */
export function logMessages(log: string, level?: string): string[] {
  return logLines(log)
    .filter((line) => level === undefined || line.level === level)
    .map((line) => line.message);
}

/** A RegExp matching this text literally. */
export function literal(text: string, flags?: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), flags);
}
