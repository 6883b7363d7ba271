// The status page (GET /plugins/multitenant-dicom/ui/) in a real browser: Debian's headless
// Chromium driven by playwright-core (nothing downloaded). An Orthanc with two tenants and
// an audit trail; the page lists both tenants, and after DCMTK traffic its counters and
// audit rows change without a reload. It also works behind a prefix (relative URLs), and
// Orthanc's legacy explorer links to it. Writes a screenshot to build/status-page.png
// (and to docs/status-page.png, the README's, with MTD_UPDATE_SCREENSHOT=1).
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoscu, findscu, storescu } from '../support/dcmtk.js';
import { writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { ROUTES_PREFIX, waitForAudit } from '../support/operating.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { PLUGIN_PATH } from '../support/plugin.js';

const CHROMIUM = '/usr/bin/chromium-headless-shell';
const ROOT = '1.2.826.0.1.3680043.10.1234.98';
const A = 'HOSPITAL_A';
const B = 'HOSPITAL_B';
const CALLER = 'MODALITY';
const checkout = fileURLToPath(new URL('../..', import.meta.url));

let directory: string;
let orthanc: RunningOrthanc;
let portA: number;
let portB: number;
let browser: BrowserContext;
let proxy: Server;
let proxyPort: number;
let instances: SyntheticInstance[];
const pageErrors: string[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'status-page-test-'));
  [portA, portB] = [await freePort(), await freePort()];
  instances = await Promise.all(
    [1, 2, 3].map((n) =>
      writeInstance(directory, {
        sopInstanceUid: `${ROOT}.1.1.${n}`,
        studyInstanceUid: `${ROOT}.1`,
        seriesInstanceUid: `${ROOT}.1.1`,
        patientId: 'PAGE-PATIENT',
        patientName: 'Page^Paula',
        modality: 'CT',
      }),
    ),
  );
  orthanc = await startOrthanc({
    configuration: {
      DicomAlwaysAllowEcho: false,
      DicomAlwaysAllowStore: false,
      DicomAlwaysAllowFind: false,
      DicomModalities: { modality: { AET: CALLER, Host: '127.0.0.1', Port: 104 } },
      MultitenantDicom: {
        Servers: [
          { AET: A, Port: portA, Labels: ['hospital-a'] },
          { AET: B, Port: portB, Labels: ['hospital-b', 'radiology'], LabelsConstraint: 'Any', LabelsStoreLevels: ['Patient', 'Study', 'Series', 'Instance'] },
        ],
        AuditLog: { Path: join(directory, 'audit.jsonl') },
      },
    },
    plugins: [PLUGIN_PATH],
    waitForPorts: [portA, portB],
  });

  // A reverse proxy that serves Orthanc under /orthanc/, as behind a web server with a prefix.
  proxy = createServer((incoming, outgoing) => {
    if (!incoming.url?.startsWith('/orthanc/')) {
      outgoing.writeHead(404).end();
      return;
    }
    const forwarded = request(
      { host: '127.0.0.1', port: orthanc.httpPort, path: incoming.url.slice('/orthanc'.length), method: incoming.method, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.writeHead(502).end());
    incoming.pipe(forwarded);
  });
  proxyPort = await freePort();
  await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));

  browser = await chromium.launchPersistentContext(await mkdtemp(join(directory, 'chromium-profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false, // --no-sandbox: the tests run as root
    args: ['--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
  });
  browser.on('weberror', (error) => pageErrors.push(String(error.error())));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  proxy?.close();
  await stopAllOrthancs();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

const pageUrl = () => `http://127.0.0.1:${orthanc.httpPort}${ROUTES_PREFIX}/ui/`;

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(url);
  await page.waitForSelector(`[data-tenant="${A}"]`, { timeout: 20_000 });
  return page;
}

const card = (aet: string) => `article[data-tenant="${aet}"]`;
const counter = (page: Page, aet: string, key: string) => page.textContent(`${card(aet)} [data-counter="${key}"] .value`);
const field = (page: Page, aet: string, name: string) => page.textContent(`${card(aet)} [data-field="${name}"]`);

/** Waits until the page itself (no reload) shows `expected` as this counter. */
async function waitForCounter(page: Page, aet: string, key: string, expected: string) {
  await page.waitForFunction(
    ([selector, value]) => document.querySelector(selector!)?.textContent === value,
    [`${card(aet)} [data-counter="${key}"] .value`, expected],
    { timeout: 20_000 },
  );
}

describe('the status page in headless Chromium', () => {
  it('lists both tenants with their state, port, labels and constraint', async () => {
    const page = await openPage(pageUrl());
    expect(await page.title()).toBe('Multitenant DICOM – status');
    expect(await page.locator('article.tenant').count()).toBe(2);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-field="State"]')].every((node) => node.textContent === 'Listening'), null, {
      timeout: 20_000,
    });
    expect(await field(page, A, 'Port')).toBe(String(portA));
    expect(await field(page, B, 'Port')).toBe(String(portB));
    expect(await page.locator(`${card(A)} [data-field="Labels"] .label`).allTextContents()).toEqual(['hospital-a']);
    expect(await page.locator(`${card(B)} [data-field="Labels"] .label`).allTextContents()).toEqual(['hospital-b', 'radiology']);
    expect(await field(page, A, 'LabelsConstraint')).toBe('All');
    expect(await field(page, B, 'LabelsConstraint')).toBe('Any');
    expect(await field(page, B, 'LabelsStoreLevels')).toBe('Patient, Study, Series, Instance');
    expect(await field(page, A, 'ActiveAssociations')).toBe('0');
    expect(await counter(page, A, 'Store')).toBe('0');
    expect(await page.locator(`${card(A)} figure.chart svg`).count()).toBe(1);
    await page.close();
  });

  it('shows new counters and audit events after DCMTK traffic, without reloading', async () => {
    const page = await openPage(pageUrl());
    // A mark that a reload would lose.
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    expect(await page.locator('tr[data-audit-row]').count()).toBe(0);

    const stored = await storescu({ port: portA, calledAet: A, callingAet: CALLER, files: instances.map((instance) => instance.path) });
    expect(stored.ok, stored.stdout + stored.stderr).toBe(true);
    await waitForCounter(page, A, 'Store', '3');
    await waitForCounter(page, A, 'InstancesReceived', '3');
    await page.waitForSelector(`tr[data-audit-row][data-tenant="${A}"][data-operation="C-STORE"]`, { timeout: 20_000 });
    expect(await page.locator(`tr[data-audit-row][data-tenant="${A}"][data-operation="C-STORE"]`).count()).toBe(3);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

    // More of everything, for the other counters and the screenshot.
    await storescu({ port: portB, calledAet: B, callingAet: CALLER, files: [instances[0]!.path] }); // refused: A's
    await findscu({ port: portA, calledAet: A, callingAet: CALLER, level: 'STUDY', keys: ['PatientID=PAGE-PATIENT', 'StudyInstanceUID'] });
    await findscu({ port: portB, calledAet: B, callingAet: CALLER, level: 'STUDY', keys: ['PatientName=DOE*'] });
    await echoscu({ port: portB, calledAet: B, callingAet: 'STRANGER' }); // association refused
    await waitForAudit(orthanc, { tenant: B, operation: 'A-ASSOCIATE' }, (entry) => entry.CallingAET === 'STRANGER', 'the refused association');
    await waitForCounter(page, B, 'StoreFailed', '1');
    await waitForCounter(page, B, 'AssociationsRefused', '1');
    await waitForCounter(page, A, 'Find', '1');
    await page.waitForSelector(`tr[data-audit-row][data-tenant="${B}"][data-operation="C-STORE"] td.outcome-Refused`, { timeout: 20_000 });
    expect(await page.locator(`${card(A)} figure.chart svg rect`).count()).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

    const screenshot = join(checkout, 'build', 'status-page.png');
    mkdirSync(join(checkout, 'build'), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(readFileSync(screenshot).subarray(1, 4).toString()).toBe('PNG');
    if (process.env['MTD_UPDATE_SCREENSHOT'] === '1') copyFileSync(screenshot, join(checkout, 'docs', 'status-page.png'));
    await page.close();
  });

  it('works behind a prefix: every URL it uses is relative', async () => {
    const page = await openPage(`http://127.0.0.1:${proxyPort}/orthanc${ROUTES_PREFIX}/ui/`);
    expect(await field(page, A, 'Port')).toBe(String(portA));
    await page.waitForSelector('tr[data-audit-row]', { timeout: 20_000 });
    await page.close();
    // And without the final slash.
    const bare = await openPage(`http://127.0.0.1:${proxyPort}/orthanc${ROUTES_PREFIX}/ui`);
    expect(await field(bare, B, 'Port')).toBe(String(portB));
    await bare.close();
  });

  it('is linked from Orthanc\'s legacy explorer', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxyPort}/orthanc/app/explorer.html`);
    const link = page.locator('#multitenant-dicom-status');
    await link.waitFor({ timeout: 20_000 });
    expect(await link.evaluate((node) => (node as HTMLAnchorElement).href)).toBe(`http://127.0.0.1:${proxyPort}/orthanc${ROUTES_PREFIX}/ui/`);
    expect(await link.textContent()).toContain('Multitenant DICOM');
    await page.close();
  });

  it('raised no JavaScript error', () => {
    expect(pageErrors).toEqual([]);
  });
});

// The README shows the screenshot of this test.
it.runIf(existsSync(join(checkout, 'docs')))('the README\'s screenshot exists', () => {
  expect(readFileSync(join(checkout, 'docs', 'status-page.png')).subarray(1, 4).toString()).toBe('PNG');
});
