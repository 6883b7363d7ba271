// The plugin's REST routes under /plugins/multitenant-dicom (issue 10 adds the status
// API, the metrics, the audit trail and the status page here).
import type { Answers } from './bridge.js';
import type { Handler } from './handler.js';

export const rest: Handler<'rest'> = async (args, { runtimeTenants }) => {
  const tenant = /^\/tenants\/([^/]+)$/.exec(args.path);
  if (tenant !== null && (args.method === 'PUT' || args.method === 'DELETE')) {
    const aet = decodeURIComponent(tenant[1]!);
    const outcome = args.method === 'PUT' ? await runtimeTenants.put(aet, args.body) : await runtimeTenants.delete(aet);
    return json(outcome.status, outcome.body);
  }
  return json(404, { error: `no route ${args.method} /plugins/multitenant-dicom${args.path}` });
};

function json(status: number, body: unknown): Answers['rest'] {
  return { status, contentType: 'application/json', body: JSON.stringify(body) };
}
