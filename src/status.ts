// The plugin's REST routes under /plugins/multitenant-dicom (issue 10). Being written.
import type { Handler } from './handler.js';

export const rest: Handler<'rest'> = (args) => ({
  status: 404,
  contentType: 'application/json',
  body: JSON.stringify({ error: `no route ${args.method} /plugins/multitenant-dicom${args.path}` }),
});
