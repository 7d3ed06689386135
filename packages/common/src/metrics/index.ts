/** Metrics (counters, gauges, histograms) in the Prometheus text format. @module */
export {
  Counter,
  DEFAULT_BUCKETS,
  formatSampleValue,
  Gauge,
  Histogram,
  type Labels,
  type MetricOptions,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
} from './registry.js';
