/**
 * The pullprobe Grafana dashboard, as code. Writes
 * manifests/components/grafana-dashboard/pullprobe.json (the file the
 * grafana-dashboard component turns into a ConfigMap, and the one to import
 * by hand in Grafana).
 *
 *   node --import tsx dashboards/build-dashboard.ts
 *
 * Panels read the recording rules of alerts/pullprobe-rules.yaml where a
 * subnet or zone view is needed; raw series are filtered to the chosen
 * subnets with `and on (cluster, instance) pullprobe_node_info{…}`.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_FILE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'manifests',
  'components',
  'grafana-dashboard',
  'pullprobe.json',
);

const C = 'cluster=~"$cluster"';
const S = 'subnet=~"$subnet"';
const R = 'registry=~"$registry"';
const NODES = `pullprobe_node_info{${C}, ${S}}`;
/** Keep raw agent series of the chosen subnets only. */
const inSubnets = (expr: string): string => `${expr} and on (cluster, instance) ${NODES}`;
const DS = { type: 'prometheus', uid: '${datasource}' };

interface Target {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  format?: 'table' | 'time_series';
}
interface PanelSpec {
  title: string;
  description: string;
  type: 'table' | 'timeseries' | 'stat' | 'bargauge';
  w: number;
  h: number;
  targets: Target[];
  unit?: string;
  mappings?: unknown[];
  thresholds?: Array<{ color: string; value: number | null }>;
  transformations?: unknown[];
  overrides?: unknown[];
}

const okFailing = [
  { type: 'value', options: { '0': { text: 'failing', color: 'red', index: 0 }, '1': { text: 'ok', color: 'green', index: 1 } } },
];
const verdicts = [
  {
    type: 'value',
    options: {
      '0': { text: 'ok', color: 'green', index: 0 },
      '1': { text: 'isolated', color: 'orange', index: 1 },
      '2': { text: 'subnet-wide', color: 'red', index: 2 },
      '3': { text: 'cluster-wide', color: 'dark-red', index: 3 },
    },
  },
];
const table = (expr: string): Target => ({ expr, instant: true, format: 'table' });
const cellColour = { id: 'custom.cellOptions', value: { type: 'color-background' } };

export const PANELS: PanelSpec[] = [
  {
    title: 'Verdict per subnet',
    type: 'table',
    w: 12,
    h: 9,
    description:
      "Per subnet and registry, as `pullprobe report` says it: ok, isolated (some nodes fail), subnet-wide (every node of the subnet fails: look at the subnet's route, NAT, firewall, proxy or resolver) or cluster-wide (every node fails: registry down or credentials).",
    targets: [
      table(`subnet_registry:pullprobe_verdict:code{${C}, ${S}, ${R}}`),
      table(`subnet_registry:pullprobe_failing_nodes:sum{${C}, ${S}, ${R}}`),
      table(`subnet_registry:pullprobe_nodes:count{${C}, ${S}, ${R}}`),
    ],
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true },
          renameByName: { 'Value #A': 'verdict', 'Value #B': 'failing nodes', 'Value #C': 'nodes' },
        },
      },
      { id: 'sortBy', options: { sort: [{ field: 'verdict', desc: true }] } },
    ],
    overrides: [{ matcher: { id: 'byName', options: 'verdict' }, properties: [{ id: 'mappings', value: verdicts }, cellColour] }],
  },
  {
    title: 'Why subnets fail',
    type: 'table',
    w: 12,
    h: 9,
    description: 'Failing nodes per subnet and registry by the first failing stage and reason. `pullprobe explain <reason>` gives the fix.',
    targets: [table(`subnet_registry_reason:pullprobe_failure_info:count{${C}, ${S}, ${R}}`)],
    transformations: [{ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'failing nodes' } } }],
  },
  {
    title: 'Node × registry',
    type: 'table',
    w: 24,
    h: 10,
    description: 'One row per node, one column per registry: ok when every configured target of the registry works from the node.',
    targets: [table(`node_registry:pullprobe_registry_up:min{${C}, ${S}, ${R}}`)],
    transformations: [{ id: 'groupingToMatrix', options: { columnField: 'registry', rowField: 'node', valueField: 'Value' } }],
    mappings: okFailing,
    overrides: [{ matcher: { id: 'byType', options: 'number' }, properties: [cellColour] }],
  },
  {
    title: 'Failing targets per node',
    type: 'table',
    w: 24,
    h: 8,
    description: 'Every target failing now, the node and subnet it fails from, the first failing stage, the reason and its cause.',
    targets: [table(`node_target:pullprobe_failure_info:node_info{${C}, ${S}, ${R}}`)],
    transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, instance: true } } }],
  },
  {
    title: 'Failure reasons over time',
    type: 'timeseries',
    w: 12,
    h: 8,
    unit: 'short',
    description: 'Nodes failing, by stage and reason (solid), and failed probes per second by reason.',
    targets: [
      {
        expr: `count by (stage, reason) (node_target:pullprobe_failure_info:node_info{${C}, ${S}, ${R}})`,
        legendFormat: '{{stage}} {{reason}} (nodes)',
      },
      {
        expr: `sum by (registry, reason) (${inSubnets(`rate(pullprobe_probe_failures_total{${C}, ${R}}[$__rate_interval])`)})`,
        legendFormat: '{{registry}} {{reason}} (failures/s)',
      },
    ],
  },
  {
    title: 'Stage latency per registry',
    type: 'timeseries',
    w: 12,
    h: 8,
    unit: 's',
    description: "Slowest node's time in each stage of the pull path (dns, tcp, tls, http, auth, manifest), from the last periodic probe.",
    targets: [
      {
        expr: `max by (registry, stage) (${inSubnets(`pullprobe_stage_duration_seconds{${C}, ${R}}`)})`,
        legendFormat: '{{registry}} {{stage}}',
      },
    ],
  },
  {
    title: 'Reachability per zone',
    type: 'timeseries',
    w: 12,
    h: 8,
    unit: 'percentunit',
    description: "Share of each zone's nodes that reach the registry.",
    targets: [{ expr: `zone_registry:pullprobe_registry_up:avg{${C}, ${R}}`, legendFormat: '{{zone}} {{registry}}' }],
  },
  {
    title: 'Degraded targets',
    type: 'timeseries',
    w: 12,
    h: 8,
    unit: 'short',
    description:
      'Nodes where the target works but part of its path is broken (a dead nameserver, an unreachable address, a failing mirror).',
    targets: [{ expr: `sum by (registry) (${inSubnets(`pullprobe_degraded{${C}, ${R}}`)})`, legendFormat: '{{registry}}' }],
  },
  {
    title: 'Certificate expiry',
    type: 'bargauge',
    w: 8,
    h: 8,
    unit: 's',
    description:
      "Time left before the earliest certificate in each registry host's chain expires. Red under 14 days (the alert threshold).",
    targets: [
      {
        expr: `min by (registry, host) (${inSubnets(`pullprobe_tls_cert_expiry_timestamp_seconds{${C}, ${R}}`)}) - time()`,
        legendFormat: '{{host}}',
        instant: true,
      },
    ],
    thresholds: [
      { color: 'red', value: null },
      { color: 'orange', value: 14 * 86400 },
      { color: 'green', value: 30 * 86400 },
    ],
  },
  {
    title: 'Credential expiry',
    type: 'bargauge',
    w: 8,
    h: 8,
    unit: 's',
    description: 'Time left before a pull credential with a known lifetime expires (credential provider cache, ECR token, registry token).',
    targets: [
      {
        expr: `min by (registry, source) (${inSubnets(`pullprobe_credential_expiry_timestamp_seconds{${C}, ${R}}`)}) - time()`,
        legendFormat: '{{registry}} {{source}}',
        instant: true,
      },
    ],
    thresholds: [
      { color: 'red', value: null },
      { color: 'orange', value: 3600 },
      { color: 'green', value: 86400 },
    ],
  },
  {
    title: 'Rate-limit remaining',
    type: 'bargauge',
    w: 8,
    h: 8,
    unit: 'percentunit',
    description:
      "Share of the registry's rate-limit window left, per registry and node (from its RateLimit headers, e.g. Docker Hub's ratelimit-remaining; registries that send none have no bar). Red under 10% (the alert threshold).",
    targets: [
      {
        expr: `min by (registry, node) ((pullprobe_ratelimit_remaining{${C}, ${R}} / pullprobe_ratelimit_limit{${C}, ${R}}) * on (cluster, instance) group_left (node) max by (cluster, instance, node) (${NODES}))`,
        legendFormat: '{{registry}} {{node}}',
        instant: true,
      },
    ],
    thresholds: [
      { color: 'red', value: null },
      { color: 'orange', value: 0.1 },
      { color: 'green', value: 0.25 },
    ],
  },
  {
    title: 'Nameservers per node',
    type: 'table',
    w: 24,
    h: 8,
    description: 'Whether each resolv.conf nameserver of each node answered (NOERROR or NXDOMAIN) in the last probe.',
    targets: [
      table(
        `max by (node, nameserver) (pullprobe_dns_nameserver_up{${C}} * on (cluster, instance) group_left (node) max by (cluster, instance, node) (${NODES}))`,
      ),
    ],
    transformations: [{ id: 'groupingToMatrix', options: { columnField: 'nameserver', rowField: 'node', valueField: 'Value' } }],
    mappings: [
      {
        type: 'value',
        options: { '0': { text: 'no answer', color: 'red', index: 0 }, '1': { text: 'answers', color: 'green', index: 1 } },
      },
    ],
    overrides: [{ matcher: { id: 'byType', options: 'number' }, properties: [cellColour] }],
  },
  {
    title: 'Agents per subnet',
    type: 'stat',
    w: 24,
    h: 4,
    unit: 'short',
    description: "Agents reporting, per subnet and zone. Compare with the DaemonSet's node count.",
    targets: [{ expr: `count by (subnet, zone) (${NODES})`, legendFormat: '{{subnet}} {{zone}}', instant: true }],
  },
];

function variable(name: string, label: string, query: string): object {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query, refId: `${name}-variable` },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { text: 'All', value: '$__all' },
    sort: 1,
  };
}

export function buildDashboard(): object {
  let x = 0;
  let y = 0;
  let rowH = 0;
  const panels = PANELS.map((p, i) => {
    if (x + p.w > 24) {
      x = 0;
      y += rowH;
      rowH = 0;
    }
    const gridPos = { x, y, w: p.w, h: p.h };
    x += p.w;
    rowH = Math.max(rowH, p.h);
    return {
      id: i + 1,
      type: p.type,
      title: p.title,
      description: p.description,
      datasource: DS,
      gridPos,
      targets: p.targets.map((t, j) => ({
        datasource: DS,
        refId: String.fromCharCode(65 + j),
        expr: t.expr,
        legendFormat: t.legendFormat ?? '__auto',
        instant: t.instant ?? false,
        range: !(t.instant ?? false),
        format: t.format ?? 'time_series',
      })),
      fieldConfig: {
        defaults: {
          unit: p.unit ?? 'none',
          mappings: p.mappings ?? [],
          thresholds: { mode: 'absolute', steps: p.thresholds ?? [{ color: 'green', value: null }] },
        },
        overrides: p.overrides ?? [],
      },
      options: {},
      transformations: p.transformations ?? [],
    };
  });
  return {
    uid: 'pullprobe',
    title: 'pullprobe: image pull path per node and subnet',
    tags: ['pullprobe', 'kubernetes', 'registry'],
    description:
      'Which registries each node and subnet can pull from, and why not. Metrics from the pullprobe agents; subnet and zone views from the pullprobe recording rules.',
    editable: true,
    graphTooltip: 1,
    refresh: '1m',
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    timezone: '',
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1 },
        variable('cluster', 'Cluster', 'label_values(pullprobe_node_info, cluster)'),
        variable('subnet', 'Subnet', `label_values(pullprobe_node_info{${C}}, subnet)`),
        variable('registry', 'Registry', `label_values(pullprobe_registry_up{${C}}, registry)`),
      ],
    },
    annotations: { list: [] },
    links: [],
    panels,
  };
}

export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) writeFileSync(DASHBOARD_FILE, dashboardJson());
