/**
 * The agent's HTTP server (node:http): /metrics (cached periodic results),
 * /probe (a fresh probe of a configured target, blackbox style), /healthz,
 * /readyz and the human status page at /.
 *
 * /probe only probes what the configuration lists (an image target also
 * allows its registry), so it cannot be used to make the node connect
 * anywhere; concurrent and repeated requests for one target share one probe
 * through SingleFlight. Blackbox's `target=` (a registry host or an image
 * reference, as the configuration takes it) is accepted as well as
 * `registry=`/`image=`, and `module=` is ignored, so the prometheus-operator
 * Probe resource and `__param_target` relabelling work unchanged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHuman } from '../output/format-human.js';
import { parseImageReference, parseTarget, type ImageRef } from '../model/reference.js';
import { realClock, type Clock, type Log, type ProbeResult } from '../model/types.js';
import { probeRegistry, type AgentMetrics } from './metrics.js';
import { SingleFlight } from './single-flight.js';
import { renderStatusPage } from './status-page.js';
import type { StatusStore } from './status-store.js';

/** A configured target and its probe timeout (AgentConfig.targets satisfies this). */
export interface AllowedTarget {
  target: string;
  timeoutMs: number;
}

export interface ServerDeps {
  metrics: AgentMetrics;
  store: StatusStore;
  /** Run one fresh probe of a configured target string. */
  probeNow: (target: string, timeoutMs: number) => Promise<ProbeResult>;
  /** The configured targets (re-read on every request, so reloads apply). */
  allowed: () => readonly AllowedTarget[];
  /** Effective configuration, already redacted. */
  effectiveConfig: () => object;
  /** True once the agent serves and every target's first probe is scheduled (not when the first cycle finished). */
  ready: () => boolean;
  /** Registries found by pod discovery (not configured). */
  discovered?: () => readonly string[];
  log: Log;
  clock?: Clock;
  /** How long a /probe result is reused; default 5000 ms. */
  probeCacheMs?: number;
}

export interface AgentServer {
  listen(host: string, port: number): Promise<{ port: number }>;
  close(): Promise<void>;
  /** The underlying server (tests emit errors on it). */
  readonly http: http.Server;
}

export type ProbeFormat = 'prometheus' | 'json' | 'debug';

export type ProbeRequest =
  | { ok: true; key: string; target: string; timeoutMs: number; format: ProbeFormat }
  | { ok: false; status: 400 | 403; message: string; format: ProbeFormat };

const SCRAPE_TIMEOUT_HEADER = 'x-prometheus-scrape-timeout-seconds';
/** Kept back from Prometheus' scrape timeout so the answer arrives in time (blackbox's default offset). */
const SCRAPE_OFFSET_MS = 500;
const PROBE_PARAMS = new Set(['registry', 'image', 'target', 'format', 'debug']);
/** Sent by the prometheus-operator Probe resource and blackbox-style configs; pullprobe has one module. */
const IGNORED_PARAMS = new Set(['module']);

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function registryKey(registry: string): string {
  return registry.toLowerCase();
}

function imageKey(ref: ImageRef): string {
  return `${registryKey(ref.registry)}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The probe deadline: the target's timeout, shortened to fit Prometheus' scrape timeout when it sent one. */
export function probeTimeoutMs(configuredMs: number, scrapeTimeoutHeader: string | undefined): number {
  if (scrapeTimeoutHeader === undefined) return configuredMs;
  const seconds = Number(scrapeTimeoutHeader.trim());
  if (scrapeTimeoutHeader.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) return configuredMs;
  const scrapeMs = seconds * 1000;
  const budget = scrapeMs - SCRAPE_OFFSET_MS > 0 ? scrapeMs - SCRAPE_OFFSET_MS : scrapeMs / 2;
  return Math.max(1, Math.min(configuredMs, Math.floor(budget)));
}

interface AllowedIndex {
  byRegistry: Map<string, AllowedTarget & { explicit: boolean }>;
  byImage: Map<string, AllowedTarget>;
}

/** Built once per list of allowed targets (the list changes only on a reload), not per request. */
const indexes = new WeakMap<readonly AllowedTarget[], AllowedIndex>();

export function allowedIndex(allowed: readonly AllowedTarget[]): AllowedIndex {
  const known = indexes.get(allowed);
  if (known) return known;
  // A registry listed as a target keeps its own timeout; one implied by image
  // targets takes the longest of theirs.
  const byRegistry = new Map<string, AllowedTarget & { explicit: boolean }>();
  const byImage = new Map<string, AllowedTarget>();
  for (const a of allowed) {
    const p = parseTarget(a.target);
    if (!p.ok) continue;
    if (p.target.kind === 'registry') {
      byRegistry.set(registryKey(p.target.registry), { target: p.target.registry, timeoutMs: a.timeoutMs, explicit: true });
      continue;
    }
    const ref = p.target.ref;
    byImage.set(imageKey(ref), a);
    const rk = registryKey(ref.registry);
    const seen = byRegistry.get(rk);
    if (seen?.explicit) continue;
    byRegistry.set(rk, { target: ref.registry, timeoutMs: Math.max(seen?.timeoutMs ?? 0, a.timeoutMs), explicit: false });
  }
  const index = { byRegistry, byImage };
  indexes.set(allowed, index);
  return index;
}

/** Validate /probe's query against the configured targets. Pure. */
export function resolveProbeRequest(
  params: URLSearchParams,
  allowed: readonly AllowedTarget[],
  scrapeTimeoutHeader?: string,
): ProbeRequest {
  const formatValues = params.getAll('format');
  const debugValues = params.getAll('debug');
  const debug = debugValues[0] === 'true';
  const format: ProbeFormat = debug ? 'debug' : formatValues[0] === 'json' ? 'json' : 'prometheus';
  const bad = (message: string): ProbeRequest => ({ ok: false, status: 400, message, format });

  for (const name of new Set(params.keys())) {
    if (IGNORED_PARAMS.has(name)) continue;
    if (!PROBE_PARAMS.has(name))
      return bad(
        `unknown parameter "${clip(name)}": use registry=HOST, image=REF or target=HOST|REF, optionally format=json or debug=true`,
      );
    if (params.getAll(name).length > 1) return bad(`parameter "${name}" given more than once`);
  }
  if (formatValues.length && formatValues[0] !== 'json' && formatValues[0] !== 'prometheus') {
    return bad(`format must be "json" or "prometheus", not "${clip(formatValues[0] ?? '')}"`);
  }
  if (debugValues.length && debugValues[0] !== 'true' && debugValues[0] !== 'false') {
    return bad(`debug must be "true" or "false", not "${clip(debugValues[0] ?? '')}"`);
  }
  if (debug && formatValues[0] === 'json') return bad('use either format=json or debug=true, not both');

  const given = ['registry', 'image', 'target'].filter((n) => params.has(n));
  if (given.length !== 1) return bad('give exactly one of registry=HOST, image=REF or target=HOST|REF');
  if (params.get(given[0] ?? '') === '') return bad(`${given[0]}= must not be empty`);
  let registry = params.get('registry');
  let image = params.get('image');
  const target = params.get('target');
  if (target !== null) {
    // Blackbox style (__param_target, the Probe resource): a target string as
    // the configuration takes it, a bare registry host or an image reference.
    const p = parseTarget(target);
    if (!p.ok) return bad(`target= is neither a registry host[:port] nor an image reference: "${clip(target)}"`);
    if (p.target.kind === 'registry') registry = target;
    else image = target;
  }

  const { byRegistry, byImage } = allowedIndex(allowed);

  let key: string;
  let match: AllowedTarget | undefined;
  if (registry !== null) {
    const p = parseTarget(registry);
    if (!p.ok || p.target.kind !== 'registry') return bad(`registry= takes a registry host[:port], not "${clip(registry)}"`);
    key = `registry:${registryKey(p.target.registry)}`;
    match = byRegistry.get(registryKey(p.target.registry));
  } else {
    const p = parseImageReference(image ?? '');
    if (!p.ok) return bad(`image= is not a valid image reference: "${clip(image ?? '')}"`);
    key = `image:${imageKey(p.ref)}`;
    match = byImage.get(imageKey(p.ref));
  }
  if (!match) {
    const what = registry !== null ? `registry "${clip(registry)}"` : `image "${clip(image ?? '')}"`;
    return {
      ok: false,
      status: 403,
      format,
      message: `${what} is not a configured target; /probe only probes targets listed in the agent configuration`,
    };
  }
  return { ok: true, key, target: match.target, timeoutMs: probeTimeoutMs(match.timeoutMs, scrapeTimeoutHeader), format };
}

export function createServer(deps: ServerDeps): AgentServer {
  const clock = deps.clock ?? realClock;
  const flights = new SingleFlight<ProbeResult>({ cacheMs: deps.probeCacheMs ?? 5000, clock });
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      try {
        deps.log.error({ err: errorText(err), path: pathOf(req) }, 'request failed');
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      } catch {
        res.destroy();
      }
    });
  });
  // Permanent: without an 'error' listener, an accept error after listen
  // (EMFILE when the process is out of file descriptors) would be thrown and
  // kill the process. Logged instead; the server keeps accepting once the
  // condition passes. listen() adds its own one-shot listener for bind errors.
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (!server.listening) return;
    try {
      deps.log.error({ err: errorText(err), code: err.code }, 'http server error; still serving');
    } catch {
      // nothing left to report to
    }
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const routes = ['/', '/metrics', '/probe', '/healthz', '/readyz'];
    if (!routes.includes(url.pathname)) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        return;
      case '/readyz':
        if (deps.ready()) send(res, 200, 'text/plain; charset=utf-8', 'ready\n');
        else send(res, 503, 'text/plain; charset=utf-8', 'not ready: starting, first probes not scheduled yet\n');
        return;
      case '/metrics':
        send(res, 200, deps.metrics.contentType, await deps.metrics.text());
        return;
      case '/':
        send(res, 200, 'text/html; charset=utf-8', renderStatusPage(deps.store.snapshot(), { discovered: deps.discovered?.() ?? [] }));
        return;
      default:
        return probe(req, res, url);
    }
  }

  async function probe(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const header = req.headers[SCRAPE_TIMEOUT_HEADER];
    const request = resolveProbeRequest(url.searchParams, deps.allowed(), Array.isArray(header) ? header[0] : header);
    if (!request.ok) {
      deps.log.info({ status: request.status, query: clip(url.search) }, 'probe request refused');
      if (request.format === 'json') send(res, request.status, 'application/json', JSON.stringify({ error: request.message }) + '\n');
      else send(res, request.status, 'text/plain; charset=utf-8', request.message + '\n');
      return;
    }
    const flight = await flights.do(request.key, () => deps.probeNow(request.target, request.timeoutMs));
    const result = flight.value;
    deps.log.info(
      { target: request.target, ok: result.ok, reason: result.reason, shared: flight.shared, cached: flight.cached },
      'on-demand probe',
    );
    if (request.format === 'json') {
      send(res, 200, 'application/json', JSON.stringify(result) + '\n');
      return;
    }
    const registry = probeRegistry(result);
    const metricsText = await registry.metrics();
    if (request.format === 'prometheus') {
      send(res, 200, registry.contentType, metricsText);
      return;
    }
    const origin = flight.cached ? 'cached result of a recent probe' : flight.shared ? 'shared with a concurrent request' : 'fresh probe';
    const body = [
      `Probe of ${request.target} (${origin}, timeout ${request.timeoutMs} ms):`,
      '',
      formatHuman([result], { color: false }).trimEnd(),
      '',
      'Metrics that would have been returned:',
      metricsText.trimEnd(),
      '',
      'Effective configuration:',
      JSON.stringify(deps.effectiveConfig(), null, 2),
      '',
    ].join('\n');
    send(res, 200, 'text/plain; charset=utf-8', body);
  }

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      });
    },
    close() {
      return new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
    },
    http: server,
  };
}

function errorText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unprintable error';
  }
}

function pathOf(req: http.IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
