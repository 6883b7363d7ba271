// The plugin's REST routes under /plugins/multitenant-dicom (native/rest_routes.cpp hands
// them over: Orthanc's REST server receives them, so its HTTP authentication protects
// them). One routing table: a path pattern, and a handler per HTTP method; an unknown path
// is a 404, a known path with another method a 405, both with a JSON error.
import statusPage from '../build/generated/status-page.mjs';
import { METRICS_DISABLED } from './activity.js';
import { AuditDeadlineError, AuditParameterError, parseAuditQuery, readAuditTrail } from './audit.js';
import type { Answers, Requests } from './bridge.js';
import { isSameAet } from './configuration.js';
import type { Handler, HandlerContext } from './handler.js';

export type RestAnswer = Answers['rest'];
type Method = Requests['rest']['method'];

export type RouteRequest = Requests['rest'] & {
  /** The groups of the route's pattern, e.g. the AET of /tenants/{AET}. */
  params: string[];
};

export type RouteHandler = (request: RouteRequest, context: HandlerContext) => RestAnswer | Promise<RestAnswer>;

export interface Route {
  /** Matched against the path after /plugins/multitenant-dicom. */
  pattern: RegExp;
  methods: Partial<Record<Method, RouteHandler>>;
}

const PREFIX = '/plugins/multitenant-dicom';
const JSON_TYPE = 'application/json';
const HTML_TYPE = 'text/html; charset=utf-8';

export function jsonAnswer(status: number, value: unknown): RestAnswer {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(value, null, 2) };
}

export function errorAnswer(status: number, error: string, extra: Record<string, unknown> = {}): RestAnswer {
  return jsonAnswer(status, { error, ...extra });
}

const listTenants: RouteHandler = async (_request, { activity }) => jsonAnswer(200, await activity.tenants());

const oneTenant: RouteHandler = async ({ params }, { activity, tenants }) => {
  const requested = params[0] ?? '';
  const all = await activity.tenants();
  const found =
    all.find((tenant) => tenant.AET === requested) ??
    all.find((tenant) => isSameAet(tenants.dicom.strictAetComparison, tenant.AET, requested)) ??
    all.find((tenant) => tenant.AET === safeDecode(requested));
  return found === undefined ? errorAnswer(404, `no tenant has the AET ${JSON.stringify(requested)}`) : jsonAnswer(200, found);
};

/** PUT: creates or changes a tenant added through REST (its body a server entry); DELETE: stops it. */
const putTenant: RouteHandler = async ({ params, body }, { runtimeTenants }) => {
  const outcome = await runtimeTenants.put(safeDecode(params[0] ?? ''), body);
  return jsonAnswer(outcome.status, outcome.body);
};

const deleteTenant: RouteHandler = async ({ params }, { runtimeTenants }) => {
  const outcome = await runtimeTenants.delete(safeDecode(params[0] ?? ''));
  return jsonAnswer(outcome.status, outcome.body);
};

const metrics: RouteHandler = async (_request, { activity }) => {
  const enabled = activity.metrics;
  if (enabled === undefined) return errorAnswer(404, METRICS_DISABLED);
  return { status: 200, contentType: enabled.contentType, body: await enabled.text() };
};

const audit: RouteHandler = async ({ query, deadline }, { activity }) => {
  let filter;
  try {
    filter = parseAuditQuery(query);
  } catch (error) {
    if (error instanceof AuditParameterError) return errorAnswer(400, error.message, { parameter: error.parameter });
    throw error;
  }
  const trail = activity.audit;
  if (trail === undefined) {
    return errorAnswer(404, 'no audit trail: the configuration has no MultitenantDicom.AuditLog');
  }
  await trail.settled(200); // the lines of operations just reported
  try {
    return jsonAnswer(200, await readAuditTrail(trail.path, filter, deadline - 2_000));
  } catch (error) {
    if (error instanceof AuditDeadlineError) return errorAnswer(503, error.message);
    return errorAnswer(500, `cannot read the audit trail ${trail.path}: ${error instanceof Error ? error.message : String(error)}`);
  }
};

const history: RouteHandler = (_request, { activity }) => jsonAnswer(200, activity.history());

const page: RouteHandler = () => ({ status: 200, contentType: HTML_TYPE, body: statusPage });

export const ROUTES: Route[] = [
  { pattern: /^\/tenants\/?$/, methods: { GET: listTenants } },
  { pattern: /^\/tenants\/([^/]+)$/, methods: { GET: oneTenant, PUT: putTenant, DELETE: deleteTenant } },
  { pattern: /^\/metrics$/, methods: { GET: metrics } },
  { pattern: /^\/audit$/, methods: { GET: audit } },
  { pattern: /^\/activity$/, methods: { GET: history } },
  // The page is one document (its script and style inline), so it also works without the final slash.
  { pattern: /^\/ui(?:\/|\/index\.html)?$/, methods: { GET: page } },
];

export async function answerRoute(routes: Route[], request: Requests['rest'], context: HandlerContext): Promise<RestAnswer> {
  const where = `${PREFIX}${request.path}`;
  for (const route of routes) {
    const match = route.pattern.exec(request.path);
    if (match === null) continue;
    const handler = route.methods[request.method];
    if (handler === undefined) {
      // Orthanc sends a 405 with this Allow header and without the body (native/rest_routes.cpp).
      const allow = Object.keys(route.methods).join(', ');
      return { ...errorAnswer(405, `${request.method} is not allowed on ${where} (allowed: ${allow})`), allow };
    }
    return handler({ ...request, query: decodeQuery(request.query), params: match.slice(1) }, context);
  }
  return errorAnswer(404, `no route ${request.method} ${where}`);
}

export const rest: Handler<'rest'> = (args, context) => answerRoute(ROUTES, args, context);

/**
 * The query parameters, URL-decoded ("+" is a space): Orthanc 1.12.7 hands them to plugins
 * as they were in the URL.
 */
function decodeQuery(query: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(query).map(([name, value]) => [formDecode(name), formDecode(value)]));
}

function formDecode(text: string): string {
  return safeDecode(text.replaceAll('+', ' '));
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
