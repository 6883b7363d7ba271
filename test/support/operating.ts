// The plugin's operator routes (src/status.ts), as the integration tests read them:
// the tenants' status, the metrics, the audit trail.
import { expect } from 'vitest';
import type { TenantStatus } from '../../src/activity.js';
import type { AuditEntry } from '../../src/audit.js';
import type { RunningOrthanc } from './orthanc.js';

export const ROUTES_PREFIX = '/plugins/multitenant-dicom';

export async function tenantsOf(orthanc: RunningOrthanc): Promise<TenantStatus[]> {
  const answer = await orthanc.rest<TenantStatus[]>('GET', `${ROUTES_PREFIX}/tenants`);
  expect(answer.status).toBe(200);
  return answer.body;
}

export async function tenantOf(orthanc: RunningOrthanc, aet: string): Promise<TenantStatus> {
  const found = (await tenantsOf(orthanc)).find((tenant) => tenant.AET === aet);
  if (found === undefined) throw new Error(`no tenant ${aet}`);
  return found;
}

export async function metricsOf(orthanc: RunningOrthanc): Promise<string> {
  const answer = await orthanc.rest<string>('GET', `${ROUTES_PREFIX}/metrics`);
  expect(answer.status).toBe(200);
  return answer.body;
}

/** The value of one series of an exposition text, e.g. `multitenant_dicom_listening{tenant="A"}`; undefined when absent. */
export function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

export async function auditOf(orthanc: RunningOrthanc, query: Record<string, string> = {}): Promise<AuditEntry[]> {
  const answer = await orthanc.rest<AuditEntry[]>('GET', `${ROUTES_PREFIX}/audit?${new URLSearchParams(query)}`);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

/**
 * Polls the audit trail until it holds an entry that satisfies `predicate` (events reach
 * the plugin moments after their operation), and returns it.
 */
export async function waitForAudit(
  orthanc: RunningOrthanc,
  query: Record<string, string>,
  predicate: (entry: AuditEntry) => boolean,
  what: string,
): Promise<AuditEntry> {
  let found: AuditEntry | undefined;
  await expect
    .poll(
      async () => {
        found = (await auditOf(orthanc, query)).filter(predicate).at(-1);
        return found !== undefined;
      },
      { timeout: 20_000, interval: 100, message: `the audit trail has ${what}` },
    )
    .toBe(true);
  return found!;
}

/** Polls `condition` until it holds (outside a test, where expect.poll cannot run); throws after `timeoutMs`. */
export async function until(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
