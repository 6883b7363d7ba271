import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Requests } from '../../src/bridge.js';
import type { TenantConfig } from '../../src/configuration.js';
import { answerRoute, rest, ROUTES, type Route } from '../../src/status.js';
import { EXPLORER_EXTENSION } from '../../src/ui/explorer.js';
import { contextFor } from '../support/fake-context.js';

const directory = mkdtempSync(join(tmpdir(), 'status-test-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const servers: TenantConfig[] = [
  { index: 0, aet: 'HOSPITAL_A', port: 4243, labels: ['a'], labelsConstraint: 'All', labelsStoreLevels: ['Study', 'Series', 'Instance'], foreignInstances: 'Reject' },
  { index: 1, aet: 'HOSPITAL_B', port: 4244, labels: ['b', 'c'], labelsConstraint: 'Any', labelsStoreLevels: ['Patient', 'Study'], foreignInstances: 'Share' },
];

function context(auditPath?: string, metricsEnabled = true) {
  const fake = contextFor(servers);
  fake.activity.configure(servers, { auditLog: auditPath === undefined ? undefined : { path: auditPath }, metricsEnabled }, fake.orthanc);
  return fake;
}

function request(method: Requests['rest']['method'], path: string, query: Record<string, string> = {}): Requests['rest'] {
  return { method, path, query, body: '', deadline: Date.now() + 30_000 };
}

async function call(fake: ReturnType<typeof context>, method: Requests['rest']['method'], path: string, query: Record<string, string> = {}) {
  const answer = await rest(request(method, path, query), fake);
  return { ...answer, json: answer.contentType === 'application/json' ? JSON.parse(answer.body) : undefined };
}

describe('GET /tenants', () => {
  it('lists the tenants in configuration order, with their settings, state and counters', async () => {
    const answer = await call(context(), 'GET', '/tenants');
    expect(answer.status).toBe(200);
    expect(answer.json).toHaveLength(2);
    expect(answer.json[1]).toEqual({
      AET: 'HOSPITAL_B',
      Port: 4244,
      Labels: ['b', 'c'],
      LabelsConstraint: 'Any',
      LabelsStoreLevels: ['Patient', 'Study'],
      State: 'Stopped',
      Error: null,
      ActiveAssociations: 0,
      Counters: {
        Associations: 0, AssociationsRefused: 0, Echo: 0, Store: 0, StoreFailed: 0, Find: 0, FindFailed: 0,
        Move: 0, MoveFailed: 0, Get: 0, GetFailed: 0, InstancesReceived: 0, BytesReceived: 0, InstancesSent: 0,
      },
    });
  });

  it('answers one tenant by AET (case-insensitively, as StrictAetComparison false), 404 for an unknown one', async () => {
    const fake = context();
    expect((await call(fake, 'GET', '/tenants/HOSPITAL_A')).json).toMatchObject({ AET: 'HOSPITAL_A', Port: 4243 });
    expect((await call(fake, 'GET', '/tenants/hospital_b')).json).toMatchObject({ AET: 'HOSPITAL_B' });
    const unknown = await call(fake, 'GET', '/tenants/NOBODY');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ error: 'no tenant has the AET "NOBODY"' });
  });
});

describe('the other routes', () => {
  it('GET /metrics: the Prometheus text', async () => {
    const answer = await call(context(), 'GET', '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(answer.body).toContain('multitenant_dicom_requests_total{tenant="HOSPITAL_B",operation="C-GET",outcome="failure"} 0');
  });

  it('GET /metrics with the metrics disabled: 404 naming the keys; the counters of GET /tenants go on', async () => {
    const fake = context(undefined, false);
    const answer = await call(fake, 'GET', '/metrics');
    expect(answer.status).toBe(404);
    expect(answer.json).toEqual({
      error: 'MultitenantDicom: the metrics are disabled (MultitenantDicom.Metrics.Enabled, or else Orthanc\'s MetricsEnabled, is false)',
    });
    fake.activity.record([
      { type: 'operation', tenant: 0, operation: 'C-ECHO', status: 0, durationMs: 1, at: Date.now(), callingAet: 'X', calledAet: 'HOSPITAL_A', peer: '127.0.0.1' },
    ]);
    const tenant = await call(fake, 'GET', '/tenants/HOSPITAL_A');
    expect(tenant.json.Counters.Echo).toBe(1);
  });

  it('GET /activity: the last hour per minute', async () => {
    const answer = await call(context(), 'GET', '/activity');
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ MinuteSeconds: 60, Minutes: 60 });
    expect(answer.json.Tenants.map((tenant: { AET: string }) => tenant.AET)).toEqual(['HOSPITAL_A', 'HOSPITAL_B']);
  });

  it('GET /audit without an audit trail: 404 saying so', async () => {
    const answer = await call(context(), 'GET', '/audit');
    expect(answer.status).toBe(404);
    expect(answer.json.error).toMatch(/no audit trail.*MultitenantDicom\.AuditLog/);
  });

  it('GET /audit: the events; a bad parameter is a 400 naming it', async () => {
    const fake = context(join(directory, 'audit.jsonl'));
    fake.activity.record([
      { type: 'operation', tenant: 1, operation: 'C-ECHO', at: Date.now(), durationMs: 1, callingAet: 'M', calledAet: 'HOSPITAL_B', peer: '127.0.0.1', status: 0 },
    ]);
    const answer = await call(fake, 'GET', '/audit', { tenant: 'HOSPITAL_B' });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject([{ Tenant: 'HOSPITAL_B', Operation: 'C-ECHO', Outcome: 'Success' }]);
    const bad = await call(fake, 'GET', '/audit', { limit: '-1' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ parameter: 'limit' });
    await fake.activity.audit!.close();
  });

  it.each(['/ui', '/ui/', '/ui/index.html'])('GET %s: the status page, one HTML document', async (path) => {
    const answer = await call(context(), 'GET', path);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('text/html; charset=utf-8');
    expect(answer.body).toMatch(/^<!doctype html>/);
    expect(answer.body).toContain('<script>');
    expect(answer.body).not.toContain('/*SCRIPT*/');
    // Relative URLs only: Orthanc may sit behind a prefix.
    expect(answer.body).not.toMatch(/(src|href)="\//);
    expect(answer.body).not.toContain('/plugins/multitenant-dicom');
  });
});

describe('routing', () => {
  it('answers an unknown path with 404 and a JSON error', async () => {
    for (const path of ['/tenants/A/counters', '/metricsx', '/ui/app.js', '/auditx']) {
      const answer = await call(context(), 'GET', path);
      expect(answer.status, path).toBe(404);
      expect(answer.json.error).toBe(`no route GET /plugins/multitenant-dicom${path}`);
    }
  });

  it('answers another method on a known path with 405, naming the allowed ones', async () => {
    const answer = await call(context(), 'POST', '/tenants/HOSPITAL_A');
    expect(answer.status).toBe(405);
    expect(answer.allow).toBe('GET, PUT, DELETE');
    expect(answer.json.error).toBe('POST is not allowed on /plugins/multitenant-dicom/tenants/HOSPITAL_A (allowed: GET, PUT, DELETE)');
    expect((await call(context(), 'DELETE', '/metrics')).allow).toBe('GET');
  });

  it('hands PUT and DELETE of /tenants/{AET} to the tenants added through REST, the AET URL-decoded', async () => {
    const fake = context();
    const calls: string[] = [];
    fake.runtimeTenants.put = async (aet, body) => (calls.push(`PUT ${aet} ${body}`), { status: 201, body: { AET: aet } });
    fake.runtimeTenants.delete = async (aet) => (calls.push(`DELETE ${aet}`), { status: 409, body: { error: 'in the file' } });
    const put = await rest({ ...request('PUT', '/tenants/CLINIC%20%C3%89'), body: '{"Port":4300}' }, fake);
    expect(put.status).toBe(201);
    expect(JSON.parse(put.body)).toEqual({ AET: 'CLINIC É' });
    const deleted = await call(fake, 'DELETE', '/tenants/HOSPITAL_A');
    expect(deleted.status).toBe(409);
    expect(deleted.json).toEqual({ error: 'in the file' });
    expect(calls).toEqual(['PUT CLINIC É {"Port":4300}', 'DELETE HOSPITAL_A']);
  });

  it('is one table that takes new methods and routes', async () => {
    const routes: Route[] = ROUTES.map((route) =>
      route.pattern.source === /^\/metrics$/.source
        ? { ...route, methods: { ...route.methods, DELETE: () => ({ status: 200, contentType: 'text/plain', body: 'reset' }) } }
        : route,
    );
    expect(await answerRoute(routes, request('DELETE', '/metrics'), context())).toEqual({ status: 200, contentType: 'text/plain', body: 'reset' });
    expect((await answerRoute(routes, request('POST', '/metrics'), context())).allow).toBe('GET, DELETE');
  });
});

describe('the legacy explorer\'s extension', () => {
  it('is JavaScript that adds a relative link to the page on the home page', () => {
    expect(() => new Function(EXPLORER_EXTENSION)).not.toThrow();
    expect(EXPLORER_EXTENSION).toContain("$('#lookup').live('pagebeforeshow'");
    expect(EXPLORER_EXTENSION).toContain('"../plugins/multitenant-dicom/ui/"');
  });
});

describe('query parameters', () => {
  it('are URL-decoded, as Orthanc passes them as they were in the URL', async () => {
    const fake = context(join(directory, 'decoded-audit.jsonl'));
    fake.activity.record([
      { type: 'operation', tenant: 0, operation: 'C-STORE', at: Date.parse('2026-12-06T10:00:00Z'), durationMs: 1, callingAet: 'M', calledAet: 'HOSPITAL_A', peer: '127.0.0.1', status: 0, patientIds: ['DOE JOHN+%'] },
    ]);
    const answer = await call(fake, 'GET', '/audit', { since: '2026-12-06T09%3A00%3A00%2B00%3A00', patient: 'DOE+JOHN%2B%25' });
    expect(answer.status, answer.body).toBe(200);
    expect(answer.json).toHaveLength(1);
    await fake.activity.audit!.close();
  });
});
