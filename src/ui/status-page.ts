// The status page's script (runs in the browser; bundled by scripts/compile-ui.mjs and
// inlined into the page). Every few seconds it reads the plugin's routes, through URLs
// relative to the page (Orthanc may sit behind a prefix), and redraws: the tenants with
// their counters, a chart of each tenant's operations per minute over the last hour (plain
// SVG), and the most recent audit events. Everything shown is set as text, never as HTML.
import type { ActivityHistory, TenantStatus } from '../activity.js';
import type { AuditEntry, AuditLine } from '../audit.js';
import type { Operation } from '../bridge.js';

const REFRESH_MS = 3_000;
const AUDIT_ROWS = 25;
const OPERATIONS: Operation[] = ['A-ASSOCIATE', 'C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET'];
const COLORS: Record<Operation, string> = {
  'A-ASSOCIATE': '#c3ccd8',
  'C-ECHO': '#8e7cc3',
  'C-STORE': '#1f77b4',
  'C-FIND': '#2ca02c',
  'C-MOVE': '#ff7f0e',
  'C-GET': '#d62728',
};
const COUNTERS: { key: keyof TenantStatus['Counters']; name: string; failed?: boolean }[] = [
  { key: 'Associations', name: 'Associations' },
  { key: 'AssociationsRefused', name: 'Associations refused', failed: true },
  { key: 'Echo', name: 'C-ECHO' },
  { key: 'Store', name: 'C-STORE' },
  { key: 'StoreFailed', name: 'C-STORE failed', failed: true },
  { key: 'Find', name: 'C-FIND' },
  { key: 'FindFailed', name: 'C-FIND failed', failed: true },
  { key: 'Move', name: 'C-MOVE' },
  { key: 'MoveFailed', name: 'C-MOVE failed', failed: true },
  { key: 'Get', name: 'C-GET' },
  { key: 'GetFailed', name: 'C-GET failed', failed: true },
  { key: 'InstancesReceived', name: 'Instances received' },
  { key: 'BytesReceived', name: 'Bytes received' },
  { key: 'InstancesSent', name: 'Instances sent' },
];

// The routes are siblings of "ui/": "../x" from .../ui/ and .../ui/index.html, "./x" from .../ui.
const apiBase = new URL(location.pathname.endsWith('/ui') ? './' : '../', location.href);
const api = (route: string) => new URL(route, apiBase).href;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag: string, attributes: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function tenantCard(tenant: TenantStatus, history: ActivityHistory['Tenants'][number] | undefined, start: number): HTMLElement {
  const state = element('span', { class: `state state-${tenant.State}`, 'data-field': 'State' }, tenant.State);
  const labels = element('dd', { 'data-field': 'Labels' }, ...tenant.Labels.map((label) => element('span', { class: 'label' }, label)));
  const facts = element(
    'dl',
    { class: 'facts' },
    element('dt', {}, 'Port'),
    element('dd', { 'data-field': 'Port' }, String(tenant.Port)),
    element('dt', {}, 'Labels'),
    labels,
    element('dt', {}, 'Constraint'),
    element('dd', { 'data-field': 'LabelsConstraint' }, tenant.LabelsConstraint),
    element('dt', {}, 'Store levels'),
    element('dd', { 'data-field': 'LabelsStoreLevels' }, tenant.LabelsStoreLevels.join(', ')),
    element('dt', {}, 'Active associations'),
    element('dd', { 'data-field': 'ActiveAssociations' }, String(tenant.ActiveAssociations)),
  );
  const counters = element(
    'div',
    { class: 'counters' },
    ...COUNTERS.map(({ key, name, failed }) => {
      const value = tenant.Counters[key];
      return element(
        'div',
        { class: `counter${failed && value > 0 ? ' failed' : ''}`, 'data-counter': key, title: key },
        element('span', { class: 'name' }, name),
        element('span', { class: 'value' }, key === 'BytesReceived' ? formatBytes(value) : String(value)),
      );
    }),
  );
  const card = element(
    'article',
    { class: 'tenant', 'data-tenant': tenant.AET },
    element('header', {}, element('h2', {}, tenant.AET), state),
    facts,
  );
  if (tenant.Error !== null) card.append(element('p', { class: 'error', 'data-field': 'Error' }, tenant.Error));
  card.append(counters);
  if (history !== undefined) card.append(chart(history, start));
  return card;
}

/** Stacked bars: one per minute of the last hour, one colour per operation. */
function chart(history: ActivityHistory['Tenants'][number], start: number): HTMLElement {
  const width = 600;
  const height = 120;
  const left = 30;
  const bottom = 16;
  const minutes = history.Failed.length;
  const totals = Array.from({ length: minutes }, (_, i) => OPERATIONS.reduce((sum, op) => sum + (history.Operations[op][i] ?? 0), 0));
  const peak = Math.max(1, ...totals);
  const plotHeight = height - bottom - 4;
  const barWidth = (width - left) / minutes;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Operations per minute of ${history.AET}` });
  root.append(
    svg('line', { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: '#c9d0d9' }),
    svg('text', { x: left - 4, y: 12, 'text-anchor': 'end', 'font-size': 10, fill: '#5f6b7a' }, String(peak)),
    svg('text', { x: left - 4, y: height - bottom, 'text-anchor': 'end', 'font-size': 10, fill: '#5f6b7a' }, '0'),
    svg('text', { x: left, y: height - 3, 'font-size': 10, fill: '#5f6b7a' }, '−60 min'),
    svg('text', { x: left + (width - left) / 2, y: height - 3, 'text-anchor': 'middle', 'font-size': 10, fill: '#5f6b7a' }, '−30 min'),
    svg('text', { x: width, y: height - 3, 'text-anchor': 'end', 'font-size': 10, fill: '#5f6b7a' }, 'now'),
  );
  for (let i = 0; i < minutes; i++) {
    if (totals[i] === 0) continue;
    const group = svg('g', {});
    let y = height - bottom;
    const parts: string[] = [];
    for (const operation of OPERATIONS) {
      const value = history.Operations[operation][i] ?? 0;
      if (value === 0) continue;
      const barHeight = (value / peak) * plotHeight;
      y -= barHeight;
      group.append(svg('rect', { x: left + i * barWidth + 0.5, y, width: Math.max(barWidth - 1, 1), height: barHeight, fill: COLORS[operation] }));
      parts.push(`${operation} ${value}`);
    }
    const minute = new Date(start + i * 60_000).toISOString().slice(11, 16);
    const failed = history.Failed[i] ?? 0;
    group.append(svg('title', {}, `${minute} UTC: ${parts.join(', ')}${failed > 0 ? `; not successful ${failed}` : ''}`));
    root.append(group);
  }
  const legend = element(
    'div',
    { class: 'legend' },
    ...OPERATIONS.map((operation) => element('span', {}, element('i', { style: `background:${COLORS[operation]}` }), operation)),
  );
  return element('figure', { class: 'chart' }, element('figcaption', {}, 'Operations per minute, last hour'), root, legend);
}

function details(entry: AuditEntry): string {
  const parts: string[] = [];
  if (entry.Level) parts.push(`Level ${entry.Level}`);
  if (entry.Query) {
    const keys = Object.entries(entry.Query)
      .filter(([key, value]) => key !== 'QueryRetrieveLevel' && value !== null && value !== '')
      .map(([key, value]) => `${key}=${value}`);
    if (keys.length > 0) parts.push(keys.join(' '));
  }
  if (entry.SOPInstanceUID) parts.push(`SOP ${entry.SOPInstanceUID}`);
  if (entry.Destination !== undefined) parts.push(`→ ${entry.Destination}`);
  if (entry.Instances !== undefined) parts.push(`${entry.Instances} instance(s) sent`);
  return parts.join('; ');
}

/** The cells that differ between a DICOM operation and a change of a tenant through REST. */
interface RowCells {
  who: string;
  patients: string;
  details: string;
  durationMs: string;
}

function cellsOf(entry: AuditLine): RowCells {
  if (!('CallingAET' in entry)) {
    const labels = `${entry.Labels.join(', ')} (${entry.LabelsConstraint})`;
    return { who: 'REST', patients: '', details: `port ${entry.Port}; labels ${labels}`, durationMs: '' };
  }
  return {
    who: `${entry.CallingAET} @ ${entry.PeerAddress}`,
    patients: (entry.PatientIDs ?? []).join(', '),
    details: details(entry),
    durationMs: String(Math.round(entry.DurationMs)),
  };
}

function auditRow(entry: AuditLine): HTMLElement {
  const cells = cellsOf(entry);
  return element(
    'tr',
    { 'data-audit-row': '', 'data-operation': entry.Operation, 'data-tenant': entry.Tenant },
    element('td', {}, entry.Time.replace('T', ' ').replace('Z', '')),
    element('td', {}, entry.Tenant),
    element('td', {}, entry.Operation),
    element('td', { class: `outcome-${entry.Outcome}` }, entry.Outcome),
    element('td', {}, entry.Status ?? '—'),
    element('td', {}, String(entry.EventID)),
    element('td', {}, cells.who),
    element('td', {}, cells.patients),
    element('td', { class: 'details' }, cells.details),
    element('td', {}, cells.durationMs),
  );
}

async function getJson<T>(route: string): Promise<{ status: number; body: T }> {
  const response = await fetch(api(route), { cache: 'no-store', headers: { Accept: 'application/json' } });
  return { status: response.status, body: (await response.json()) as T };
}

let refreshing = false;

async function refresh(): Promise<void> {
  if (refreshing) return;
  refreshing = true;
  const problem = document.getElementById('problem')!;
  try {
    const [tenants, history, audit] = await Promise.all([
      getJson<TenantStatus[]>('tenants'),
      getJson<ActivityHistory>('activity'),
      getJson<AuditLine[] | { error: string }>(`audit?limit=${AUDIT_ROWS}`),
    ]);
    if (tenants.status !== 200 || history.status !== 200) throw new Error(`the plugin answered HTTP ${tenants.status}/${history.status}`);
    const start = Date.parse(history.body.Start);
    const cards = tenants.body.map((tenant) =>
      tenantCard(tenant, history.body.Tenants.find((entry) => entry.AET === tenant.AET), start),
    );
    const section = document.getElementById('tenants')!;
    section.replaceChildren(...(cards.length > 0 ? cards : [element('p', { class: 'note' }, 'No tenant is configured (MultitenantDicom.Servers).')]));

    const note = document.getElementById('audit-note')!;
    const body = document.querySelector('#audit tbody')!;
    if (Array.isArray(audit.body)) {
      note.hidden = audit.body.length > 0;
      note.textContent = 'No audit event yet.';
      body.replaceChildren(...audit.body.slice().reverse().map(auditRow));
    } else {
      note.hidden = false;
      note.textContent = audit.status === 404 ? 'No audit trail: MultitenantDicom.AuditLog is not configured.' : audit.body.error;
      body.replaceChildren();
    }
    problem.hidden = true;
    document.getElementById('updated')!.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    problem.hidden = false;
    problem.textContent = `Cannot read the status: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    refreshing = false;
  }
}

void refresh();
setInterval(() => void refresh(), REFRESH_MS);
