/**
 * Every supported row of containerd's hosts.toml test tables, 1.7 and 2.x
 * (test/fixtures/conformance/containerd-hosts-1.7.json and containerd-hosts-2.x.json,
 * provenance in each file's `comment`), run through parseHostsToml / resolveRegistryHosts
 * and compared as each file's `adapter` notes say.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import {
  parseHostsToml,
  resolveRegistryHosts,
  type HostSettings,
  type HostsFs,
  type HostsOptions,
} from '../../src/node-config/hosts-toml.js';
import { differ, disagreementsAsync, loadTable, type ConformanceCase } from '../support/conformance.js';

interface HostRow {
  scheme: string;
  host: string;
  path: string;
  capabilities: string[];
  ca: string[];
  client: Array<[string, string]>;
  skipVerify: boolean | null;
  header: Record<string, string[]>;
  dialTimeout?: string;
}
interface HostsCase extends ConformanceCase {
  kind: 'parseHostsFileCount' | 'parseHostsFile' | 'loadCertFiles' | 'configureHosts' | 'hostsDir';
  fixture?: string;
  index?: number;
  baseDir?: { expectClient: Array<[string, string]> };
  host?: string;
  files?: string[] | Record<string, string>;
  configPath?: string[];
  registry?: string;
  expect: {
    count?: number;
    hosts?: Array<{ scheme: string; host: string; path: string; capabilities: string[] }>;
    scheme?: string;
    usesFallback?: boolean;
    ca?: string[];
    client?: Array<[string, string]>;
    hostDir?: string;
    endpoints?: Array<{ url: string; headerNames: string[] }>;
  } & Partial<HostRow>;
}

const FILE = '/etc/containerd/certs.d/_test/hosts.toml';
const ROOT = '/etc/containerd/certs.d';

/** In-memory HostsFs over a path → text map (directories are the files' parents). */
function memFs(files: Record<string, string>): HostsFs {
  const paths = Object.keys(files);
  return {
    readFile: (p) => {
      const t = files[p];
      return t === undefined ? Promise.reject(Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' })) : Promise.resolve(t);
    },
    readdir: (d) => Promise.resolve(paths.filter((p) => posix.dirname(p) === d).map((p) => posix.basename(p))),
    exists: (p) => Promise.resolve(paths.some((f) => f === p || f.startsWith(`${p}/`))),
  };
}

const split = (url: string | null) => {
  const m = /^([a-z]+):\/\/([^/]+)(.*)$/.exec(url ?? '');
  return { scheme: m?.[1] ?? '', host: m?.[2] ?? '', path: m?.[3] ?? '' };
};
const sorted = (xs: readonly string[]) => [...xs].sort();

function compareRow(url: string | null, s: HostSettings, e: HostsCase['expect'], clientOverride?: Array<[string, string]>): string[] {
  const u = split(url);
  return [
    ...differ('url', `${u.scheme}://${u.host}${u.path}`, `${e.scheme}://${e.host}${e.path}`),
    ...differ('capabilities', sorted(s.capabilities), sorted(e.capabilities ?? [])),
    ...differ('ca', s.ca, e.ca),
    ...differ('client', s.client, clientOverride ?? e.client),
    ...differ('skipVerify', s.skipVerify, e.skipVerify ?? false), // nil *bool compared as false (adapter note 3)
    ...differ('header', s.headers, e.header),
    ...differ('dialTimeout', s.dialTimeout, e.dialTimeout),
  ];
}

async function check(row: HostsCase, fixtures: Record<string, string>, opts: HostsOptions): Promise<string[]> {
  const e = row.expect;
  switch (row.kind) {
    case 'parseHostsFileCount': {
      const c = parseHostsToml(fixtures[row.fixture ?? ''] ?? '', FILE, opts);
      return differ('count', c.hosts.length + 1, e.count);
    }
    case 'parseHostsFile': {
      const c = parseHostsToml(fixtures[row.fixture ?? ''] ?? '', FILE, opts);
      const i = row.index ?? -1;
      const h = c.hosts[i];
      const [url, settings] = h ? [h.url, h] : i === c.hosts.length ? [c.server, c.root] : [null, null];
      if (settings === null) return [`no row ${i}`];
      return compareRow(url, settings, e, row.baseDir?.expectClient);
    }
    case 'loadCertFiles': {
      const dir = posix.join(ROOT, row.host ?? '');
      const fs = memFs(Object.fromEntries((row.files as string[]).map((f) => [posix.join(dir, f), 'x'])));
      const r = await resolveRegistryHosts([ROOT], row.host ?? '', fs, opts);
      const ep = r.endpoints[0];
      const rel = (p: string) => posix.relative(dir, p);
      return [
        ...differ('endpoints', r.endpoints.length, 1),
        ...differ('ca', ep?.caFiles.map(rel), e.ca),
        ...differ(
          'client',
          // A key inside the certificate file is { key: cert } here, [cert, ""] upstream.
          ep?.clientCerts.map(({ cert, key }) => [rel(cert), key === cert ? '' : rel(key)]),
          e.client,
        ),
      ];
    }
    case 'configureHosts': {
      const r = await resolveRegistryHosts([], row.host ?? '', memFs({}), opts);
      if (e.hosts) {
        const got = r.endpoints.map((ep) => {
          const u = split(ep.url);
          return { scheme: u.scheme, host: u.host, path: u.path, capabilities: sorted(ep.capabilities) };
        });
        return differ(
          'hosts',
          got,
          e.hosts.map((h) => ({ ...h, capabilities: sorted(h.capabilities) })),
        );
      }
      const ep = r.endpoints[0];
      return [...differ('scheme', ep?.scheme, e.scheme), ...differ('usesFallback', ep?.httpFallback ?? false, e.usesFallback)];
    }
    case 'hostsDir': {
      const r = await resolveRegistryHosts(row.configPath ?? [], row.registry ?? '', memFs(row.files as Record<string, string>), opts);
      return [
        ...differ('hostDir', r.hostDir, e.hostDir),
        ...differ(
          'endpoints',
          r.endpoints.map((ep) => ({ url: ep.url, headerNames: ep.headerNames })),
          e.endpoints,
        ),
      ];
    }
  }
}

describe('conformance: containerd hosts.toml', () => {
  it('every supported containerd 1.7.34 row agrees with parseHostsToml / resolveRegistryHosts', async () => {
    const { table, supported, unsupported } = loadTable<HostsCase>('containerd-hosts-1.7');
    // HostOptions.DefaultScheme/DefaultTLS rows: ctr-only options the CRI never passes (each row says so).
    assert.equal(unsupported.length, 8);
    assert.equal(supported.length, 25);
    const fixtures = table['fixtures'] as Record<string, string>;
    assert.deepEqual(await disagreementsAsync(supported, (row) => check(row, fixtures, {})), []);
  });

  it('every supported containerd 2.3.4 row agrees, with the 2.2+ default capability set (referrers)', async () => {
    const { table, supported, unsupported } = loadTable<HostsCase>('containerd-hosts-2.x');
    assert.equal(unsupported.length, 0);
    assert.equal(supported.length, 15);
    const fixtures = table['fixtures'] as Record<string, string>;
    assert.deepEqual(await disagreementsAsync(supported, (row) => check(row, fixtures, { referrersByDefault: true })), []);
  });
});
