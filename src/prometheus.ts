// prom-client's registry and the three metric types this plugin uses, without the
// package's index: the index also loads its default process metrics, its push gateway
// client and its cluster aggregation (Node's http, https and cluster modules, and
// OpenTelemetry), which cost Orthanc ~40 ms of start-up and serve nothing here.
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';

export { Counter, Gauge, Histogram, Registry };
