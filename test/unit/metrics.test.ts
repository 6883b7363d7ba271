import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.js';
import type { OperationEvent } from '../../src/outcomes.js';
import { outcomeOf } from '../../src/outcomes.js';

function operation(fields: Partial<OperationEvent> & Pick<OperationEvent, 'operation'>): OperationEvent {
  return { type: 'operation', tenant: 0, at: 0, durationMs: 30, callingAet: 'M', calledAet: 'A', peer: '127.0.0.1', ...fields };
}

function observe(metrics: Metrics, tenant: string, event: OperationEvent): void {
  metrics.operation(tenant, event, outcomeOf(event));
}

/** The value of one series of the exposition text. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const FAMILIES = [
  ['multitenant_dicom_requests_total', 'counter'],
  ['multitenant_dicom_request_duration_seconds', 'histogram'],
  ['multitenant_dicom_associations_total', 'counter'],
  ['multitenant_dicom_associations_refused_total', 'counter'],
  ['multitenant_dicom_active_associations', 'gauge'],
  ['multitenant_dicom_listening', 'gauge'],
  ['multitenant_dicom_received_bytes_total', 'counter'],
  ['multitenant_dicom_received_instances_total', 'counter'],
  ['multitenant_dicom_sent_instances_total', 'counter'],
  ['multitenant_dicom_javascript_timeouts_total', 'counter'],
  ['multitenant_dicom_audit_write_failures_total', 'counter'],
] as const;

describe('metrics', () => {
  it('have every family, with help and type, and every series of every tenant at 0 from the start', async () => {
    const text = await new Metrics(['A', 'B']).text();
    for (const [name, type] of FAMILIES) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} ${type}`);
    }
    for (const tenant of ['A', 'B']) {
      for (const operation of ['C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET']) {
        for (const outcome of ['success', 'refused', 'failure']) {
          expect(value(text, `multitenant_dicom_requests_total{tenant="${tenant}",operation="${operation}",outcome="${outcome}"}`)).toBe(0);
        }
        expect(value(text, `multitenant_dicom_request_duration_seconds_count{tenant="${tenant}",operation="${operation}"}`)).toBe(0);
      }
      expect(value(text, `multitenant_dicom_active_associations{tenant="${tenant}"}`)).toBe(0);
      expect(value(text, `multitenant_dicom_audit_write_failures_total{tenant="${tenant}"}`)).toBe(0);
    }
  });

  it('label every series by tenant, and publish no process-wide series', async () => {
    const text = await new Metrics(['A']).text();
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(samples.length).toBeGreaterThan(0);
    for (const sample of samples) {
      expect(sample).toMatch(/^multitenant_dicom_[a-z_]+\{(.*,)?tenant="A"[,}]/);
    }
    expect(text).not.toMatch(/process_|nodejs_/);
  });

  it('count requests by operation and outcome, and their duration in seconds', async () => {
    const metrics = new Metrics(['A']);
    observe(metrics, 'A', operation({ operation: 'C-STORE', status: 0, bytes: 1234, durationMs: 3 }));
    observe(metrics, 'A', operation({ operation: 'C-STORE', status: 0x0124, bytes: 1000, durationMs: 3 }));
    observe(metrics, 'A', operation({ operation: 'C-STORE', status: 0xa700, bytes: 10, durationMs: 3 }));
    observe(metrics, 'A', operation({ operation: 'C-MOVE', status: 0, instances: 4, durationMs: 2_000 }));
    observe(metrics, 'A', operation({ operation: 'C-GET', status: 0, instances: 1, durationMs: 20 }));
    observe(metrics, 'A', operation({ operation: 'A-ASSOCIATE' }));
    observe(metrics, 'A', operation({ operation: 'A-ASSOCIATE', refusedByAccessRules: true }));
    metrics.javascriptTimeout('A');
    metrics.auditWriteFailures('A', 2);
    metrics.state('A', 'Listening');
    const text = await metrics.text();
    const series = (name: string, labels = '') => value(text, `multitenant_dicom_${name}{tenant="A"${labels}}`);
    expect(series('requests_total', ',operation="C-STORE",outcome="success"')).toBe(1);
    expect(series('requests_total', ',operation="C-STORE",outcome="refused"')).toBe(1);
    expect(series('requests_total', ',operation="C-STORE",outcome="failure"')).toBe(1);
    expect(series('requests_total', ',operation="C-MOVE",outcome="success"')).toBe(1);
    expect(value(text, 'multitenant_dicom_request_duration_seconds_count{tenant="A",operation="C-STORE"}')).toBe(3);
    expect(value(text, 'multitenant_dicom_request_duration_seconds_sum{tenant="A",operation="C-MOVE"}')).toBe(2);
    expect(value(text, 'multitenant_dicom_request_duration_seconds_bucket{le="1",tenant="A",operation="C-MOVE"}')).toBe(0);
    expect(value(text, 'multitenant_dicom_request_duration_seconds_bucket{le="2.5",tenant="A",operation="C-MOVE"}')).toBe(1);
    expect(series('associations_total')).toBe(2);
    expect(series('associations_refused_total')).toBe(1);
    expect(series('received_bytes_total')).toBe(2244);
    expect(series('received_instances_total')).toBe(1);
    expect(series('sent_instances_total')).toBe(5);
    expect(series('javascript_timeouts_total')).toBe(1);
    expect(series('audit_write_failures_total')).toBe(2);
    expect(series('listening')).toBe(1);
  });

  it('read the active associations when scraped', async () => {
    let open = 2;
    const metrics = new Metrics(['A', 'B'], async () => new Map([['A', open]]));
    expect(value(await metrics.text(), 'multitenant_dicom_active_associations{tenant="A"}')).toBe(2);
    open = 0;
    const text = await metrics.text();
    expect(value(text, 'multitenant_dicom_active_associations{tenant="A"}')).toBe(0);
    expect(value(text, 'multitenant_dicom_active_associations{tenant="B"}')).toBe(0);
  });

  it('are served in the Prometheus text format', () => {
    expect(new Metrics([]).contentType).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8$/);
  });
});
