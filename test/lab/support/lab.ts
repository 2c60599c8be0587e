/**
 * The pullprobe network lab: real daemons in network namespaces.
 *
 *   const lab = await Lab.up();               // ~3-5 s; throws if labPrerequisites() is not empty
 *   after(() => lab.down());                  // also runs on SIGINT/SIGTERM/exit
 *   const r = await lab.exec('nodeA', ['node', 'dist/cli.js', 'probe', '--json',
 *     '--resolv-conf', lab.paths.resolvConf.nodeA, '--ca-file', lab.paths.caFile,
 *     'registry.lab.test/lab/probe:v1'], { timeoutMs: 20_000 });
 *   // r = { code, signal, stdout, stderr, timedOut, seconds }
 *   lab.fault('reject-443');                   // subnet A only (nodeA); nodeB is the control
 *   lab.fault('drop-443', { subnet: 'all', host: 'basic.lab.test' });
 *   lab.writeResolvConf('nodeA', 'nameserver 10.231.100.55\n');  // in place, same inode
 *   lab.clear();                               // no faults, default resolv.conf/hosts, token mode normal
 *
 * Topology (addresses.ts): nodeA 10.231.1.10 (subnet A), nodeB 10.231.2.10
 * (subnet B), router, services 10.231.100.0/24. Namespaces `pp-<run>-<role>`.
 * Nothing routes out of the lab; the host has no link into it.
 *
 * Names (dnsmasq on 10.231.100.53 and .54; `local=/lab.test/`):
 *   registry.lab.test .10 anonymous        basic.lab.test .11 htpasswd (bcrypt)
 *   token.lab.test .12 token auth           auth.lab.test .20 token service (realm https://auth.lab.test/token)
 *   expired.lab.test .13 expired cert (2024) wronghost.lab.test .14 cert only for other.lab.test
 *   untrusted.lab.test .15 cert from another CA (paths.untrustedCaFile)
 *   nxdomain.lab.test NXDOMAIN, servfail.lab.test SERVFAIL, refused.lab.test REFUSED,
 *   timeout.lab.test never answered.
 * Every registry serves the same storage: lab/probe:v1 (OCI index amd64+arm64),
 * lab/amd64only:v1 (OCI index, only linux/s390x), lab/single:v1 (OCI manifest);
 * digests in `lab.images`. Token users: credentials.user may pull lab/*;
 * credentials.nopullUser authenticates but gets no access; anonymous gets no access.
 *
 * Faults (fault(name, {subnet:'A'|'B'|'all' = 'A', host?})): reject-443 (TCP RST),
 * drop-443, unreach-443 (ICMP host unreachable) to every registry (or `host`);
 * token-reject-443, token-drop-443, token-unreach-443 to auth.lab.test;
 * dns-drop (first nameserver .53 silent, .54 fine: "one of two dead"), dns-drop-all;
 * tls-expired, tls-wronghost, tls-untrusted (DNAT of registry.lab.test:443 to the
 * registry with that certificate; the expired and untrusted ones also name
 * registry.lab.test, so each shows one defect); reject-80 to plain.lab.test, the
 * plain-http registry (TCP RST). Resolver faults per node are
 * resolv.conf presets (RESOLV_PRESETS): servfail, refused, nxdomain, dead, dead-first;
 * token-hang, token-error (500), token-garbage (200 non-JSON) — served by the
 * token service to requests from `subnet` only (it sees node addresses).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ADDR, NODE_NAMES, SUBNETS, type NodeName, type RegistryHost } from './addresses.js';
import {
  startContainerd,
  writeContainerdConfig,
  writeContainerdFiles,
  type ContainerdPaths,
  type ContainerdRegistryOptions,
} from './containerd.js';
import { startProxies } from './proxy.js';
import { pushImages, REPO_ROOT, startDaemons, type Daemon } from './daemons.js';
import { addFault, clearFaults, initNft, isNftFault, listRules, type NftFaultOptions } from './nft.js';
import { createTopology, deleteNamespacesSync, isAlive, listLabNamespaces, nsName, runIdOf, type Role } from './netns.js';
import { execInNs, type ExecOptions, type ExecResult } from './node-exec.js';
import { labImages, MT } from './oci-image.js';
import { createLabPki, type LabCredentials } from './pki.js';
import { labPrerequisites } from './prerequisites.js';

export { labPrerequisites, labTestOptions } from './prerequisites.js';
export { ADDR, NODES, REGISTRIES, DNS_NAMES } from './addresses.js';
export type { ExecOptions, ExecResult } from './node-exec.js';
export type { NodeName, RegistryHost } from './addresses.js';

export const FAULTS = [
  'reject-443',
  'drop-443',
  'unreach-443',
  'token-reject-443',
  'token-drop-443',
  'token-unreach-443',
  'dns-drop',
  'dns-drop-all',
  'tls-expired',
  'tls-wronghost',
  'tls-untrusted',
  'reject-80',
  'token-hang',
  'token-error',
  'token-garbage',
] as const;
export type FaultName = (typeof FAULTS)[number];
export type FaultOptions = NftFaultOptions;

/**
 * Run state lives in one machine-wide place, not per checkout: `up` removes
 * lab namespaces whose owner is gone, and it can only tell a live run of
 * another checkout from a stale one if it can read that run's state.
 */
export const DEFAULT_STATE_ROOT = process.env['PULLPROBE_LAB_STATE'] ?? join(tmpdir(), 'pullprobe-lab');

export interface LabOptions {
  /** Where per-run state lives (default <repo>/.lab); the run dir is <stateRoot>/<run>. */
  stateRoot?: string;
  /** CLI mode: daemons outlive this process; no exit/signal hooks. */
  persistent?: boolean;
  /** Keep the run dir (logs, configs) after down(). Also env PP_LAB_KEEP=1. */
  keepState?: boolean;
  /** Also start containerd 1.6 in each node namespace (paths.containerd). */
  containerd?: boolean;
  /** Also start the tinyproxy instances (proxy.ts: proxy.lab.test, proxy-deny.lab.test, proxy-auth.lab.test). */
  proxy?: boolean;
}

/** How Lab.restartContainerd starts a node's containerd again. */
export interface ContainerdRestartOptions extends ContainerdRegistryOptions {
  /** Extra environment, e.g. { HTTPS_PROXY, NO_PROXY } (every proxy variable is empty otherwise). */
  env?: Record<string, string>;
}

export interface LabPaths {
  dir: string;
  logs: string;
  caFile: string;
  untrustedCaFile: string;
  /** docker config.json variants: good (right creds for basic+token), wrong (wrong passwords), nopull, empty. */
  dockerConfig: { good: string; wrong: string; nopull: string; empty: string };
  resolvConf: Record<NodeName, string>;
  hosts: Record<NodeName, string>;
  /** Only with LabOptions.containerd: CRI socket and certs.d dir per node. */
  containerd?: Record<NodeName, { socket: string; configPath: string }>;
}

export interface LabImageInfo {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  platforms: string[];
}

interface LabState {
  run: string;
  ownerPid: number;
  dir: string;
  namespaces: string[];
  pids: Record<string, number>;
  paths: LabPaths;
  credentials: LabCredentials;
  tokenModeFile: string;
}

export const RESOLV_PRESETS = {
  /** Both good resolvers. */
  default: `nameserver ${ADDR.dnsGood}\nnameserver ${ADDR.dnsGood2}\noptions timeout:1 attempts:2\n`,
  single: `nameserver ${ADDR.dnsGood}\noptions timeout:1 attempts:2\n`,
  /** Only the DNSSEC-bogus resolver: every name SERVFAIL. */
  servfail: `nameserver ${ADDR.dnsServfail}\noptions timeout:1 attempts:1\n`,
  /** A services address with nothing on port 53: ICMP port unreachable. */
  dead: `nameserver ${ADDR.dnsDead}\noptions timeout:1 attempts:1\n`,
  /** A resolver that knows no lab.test names: NXDOMAIN. */
  nxdomain: `nameserver ${ADDR.dnsNx}\noptions timeout:1 attempts:1\n`,
  /** A resolver that answers REFUSED for lab.test. */
  refused: `nameserver ${ADDR.dnsRefused}\noptions timeout:1 attempts:1\n`,
  /** First nameserver dead, second good. */
  'dead-first': `nameserver ${ADDR.dnsDead}\nnameserver ${ADDR.dnsGood}\noptions timeout:1 attempts:2\n`,
} as const;
export type ResolvPreset = keyof typeof RESOLV_PRESETS;
const DEFAULT_HOSTS = '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n';

function stateFile(dir: string): string {
  return join(dir, 'state.json');
}

/** Synchronous teardown of one run: processes, namespaces, state dir. */
export function teardownRunSync(state: Pick<LabState, 'run' | 'dir' | 'namespaces' | 'pids'>, keep = false): void {
  const names = [...new Set([...state.namespaces, ...listLabNamespaces().filter((n) => runIdOf(n) === state.run)])];
  deleteNamespacesSync(names, Object.values(state.pids));
  if (!keep) rmSync(state.dir, { recursive: true, force: true });
  else if (existsSync(state.dir)) writeFileSync(join(state.dir, KEPT), 'kept on purpose (PP_LAB_KEEP / keepState)\n');
}

/** Marks a run dir kept on purpose after down(), so the stale sweep leaves it. */
const KEPT = 'kept';

/**
 * Remove lab namespaces whose run is stale (owner process gone, or no state).
 * `all` also removes live and persistent runs (lab-cli `down`).
 */
export function cleanupStale(stateRoot = DEFAULT_STATE_ROOT, all = false, exceptRun?: string): string[] {
  const runs = new Set(listLabNamespaces().map((n) => runIdOf(n) ?? n));
  // Runs whose namespaces are gone but whose state dir stayed (an interrupted owner).
  for (const entry of existsSync(stateRoot) ? readdirSync(stateRoot) : []) {
    if (existsSync(stateFile(join(stateRoot, entry))) && !existsSync(join(stateRoot, entry, KEPT))) runs.add(entry);
  }
  const removed: string[] = [];
  for (const run of runs) {
    if (run === exceptRun) continue;
    const dir = join(stateRoot, run);
    let st: LabState | undefined;
    try {
      st = JSON.parse(readFileSync(stateFile(dir), 'utf8')) as LabState;
    } catch {
      st = undefined;
    }
    const live = st !== undefined && (st.ownerPid === 0 || isAlive(st.ownerPid));
    if (live && !all) continue;
    const names = listLabNamespaces().filter((n) => (runIdOf(n) ?? n) === run);
    teardownRunSync({ run, dir, namespaces: names, pids: st?.pids ?? {} });
    removed.push(run);
  }
  return removed;
}

export class Lab {
  readonly run: string;
  readonly dir: string;
  readonly ns: Record<Role, string>;
  readonly addresses = ADDR;
  readonly images: LabImageInfo[] = labImages().map((i) => ({
    repository: i.repository,
    tag: i.tag,
    digest: i.digest,
    mediaType: i.mediaType,
    platforms: i.platforms,
  }));
  readonly mediaTypes = MT;
  private readonly state: LabState;
  private readonly daemons: Daemon[];
  private readonly keep: boolean;
  private readonly hooks: Array<[string, (...a: unknown[]) => void]> = [];
  private downDone = false;

  private constructor(state: LabState, daemons: Daemon[], keep: boolean) {
    this.state = state;
    this.run = state.run;
    this.dir = state.dir;
    this.daemons = daemons;
    this.keep = keep;
    this.ns = {
      router: nsName(state.run, 'router'),
      services: nsName(state.run, 'services'),
      nodeA: nsName(state.run, 'nodeA'),
      nodeB: nsName(state.run, 'nodeB'),
    };
  }

  /** Files of this run (CA, docker configs, per-node resolv.conf and hosts). */
  get paths(): LabPaths {
    return this.state.paths;
  }

  /** Lab users (see pki.ts); secrets: never print them. */
  get credentials(): LabCredentials {
    return this.state.credentials;
  }

  /** Bring a fresh lab up. Throws (listing them) when prerequisites are missing. */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    const missing = labPrerequisites();
    if (missing.length > 0) throw new Error(`lab prerequisites missing: ${missing.join('; ')}`);
    const stateRoot = opts.stateRoot ?? DEFAULT_STATE_ROOT;
    cleanupStale(stateRoot);
    const run = randomBytes(4).toString('hex');
    const dir = join(stateRoot, run);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const namespaces = (['router', 'services', ...NODE_NAMES] as Role[]).map((r) => nsName(run, r));
    const state: LabState = {
      run,
      dir,
      namespaces,
      ownerPid: opts.persistent ? 0 : process.pid,
      pids: {},
      paths: undefined as unknown as LabPaths,
      credentials: undefined as unknown as LabCredentials,
      tokenModeFile: '',
    };
    const save = (): void => writeFileSync(stateFile(dir), JSON.stringify(state, null, 2), { mode: 0o600 });
    save();
    const daemons: Daemon[] = [];
    const keep = opts.keepState === true || process.env['PP_LAB_KEEP'] === '1';
    const lab = (): Lab => new Lab(state, daemons, keep);
    let hooked: Lab | undefined;
    try {
      createTopology(run);
      if (!opts.persistent) hooked = lab().installHooks();
      initNft(nsName(run, 'router'));
      const pki = createLabPki(dir);
      const nodeDir = (n: NodeName): string => join(dir, 'nodes', n);
      for (const n of NODE_NAMES) mkdirSync(nodeDir(n), { recursive: true });
      state.paths = {
        dir,
        logs: join(dir, 'logs'),
        caFile: pki.caFile,
        untrustedCaFile: pki.untrustedCaFile,
        dockerConfig: pki.dockerConfig,
        resolvConf: { nodeA: join(nodeDir('nodeA'), 'resolv.conf'), nodeB: join(nodeDir('nodeB'), 'resolv.conf') },
        hosts: { nodeA: join(nodeDir('nodeA'), 'hosts'), nodeB: join(nodeDir('nodeB'), 'hosts') },
      };
      state.credentials = pki.credentials;
      for (const n of NODE_NAMES) {
        writeFileSync(state.paths.resolvConf[n], RESOLV_PRESETS.default);
        writeFileSync(state.paths.hosts[n], DEFAULT_HOSTS);
      }
      const record = (d: Daemon): void => {
        daemons.push(d);
        state.pids[d.name] = d.pid;
        save();
      };
      const ctrd = opts.containerd
        ? NODE_NAMES.map((n) => {
            const p = writeContainerdFiles(nodeDir(n), pki.caFile);
            return [n, p] as const;
          })
        : [];
      if (opts.containerd) {
        state.paths.containerd = Object.fromEntries(ctrd.map(([n, p]) => [n, { socket: p.socket, configPath: p.configPath }])) as Record<
          NodeName,
          { socket: string; configPath: string }
        >;
      }
      const ctrdUp = Promise.all(
        ctrd.map(([n, p]) =>
          startContainerd(
            nsName(run, n),
            `containerd-${n}`,
            p,
            { resolvConf: state.paths.resolvConf[n], hosts: state.paths.hosts[n] },
            join(dir, 'logs'),
            record,
          ),
        ),
      );
      const proxiesUp = opts.proxy ? startProxies(nsName(run, 'services'), dir, pki.credentials, record) : Promise.resolve();
      const [started] = await Promise.all([startDaemons(nsName(run, 'services'), dir, pki, record), ctrdUp, proxiesUp]);
      state.tokenModeFile = started.tokenModeFile;
      save();
      await pushImages(nsName(run, 'services'), dir, pki, record);
      delete state.pids['push-image'];
      save();
    } catch (err) {
      if (hooked) await hooked.down();
      else teardownRunSync(state, keep);
      throw err;
    }
    const l = hooked ?? lab();
    if (opts.persistent) for (const d of daemons) d.child.unref();
    return l;
  }

  /** Attach to a running lab by run id (lab-cli). */
  static attach(run: string, stateRoot = DEFAULT_STATE_ROOT): Lab {
    const st = JSON.parse(readFileSync(stateFile(join(stateRoot, run)), 'utf8')) as LabState;
    return new Lab(st, [], false);
  }

  /** Run argv inside a node namespace (node's resolv.conf/hosts bound over /etc). */
  exec(node: NodeName, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return execInNs(this.ns[node], argv, { resolvConf: this.paths.resolvConf[node], hosts: this.paths.hosts[node] }, REPO_ROOT, opts);
  }

  /**
   * Stop a node's containerd and start it again with another environment
   * and/or config.toml (same root: remove images through the CRI between
   * cases). Without options it comes back as Lab.up started it.
   */
  async restartContainerd(node: NodeName, opts: ContainerdRestartOptions = {}): Promise<void> {
    const c = this.paths.containerd?.[node];
    if (!c) throw new Error('restartContainerd needs Lab.up({ containerd: true })');
    const name = `containerd-${node}`;
    const nodeDir = join(this.dir, 'nodes', node);
    const old = this.daemons.find((d) => d.name === name);
    const oldPid = old?.pid ?? this.state.pids[name];
    if (oldPid !== undefined) {
      try {
        process.kill(oldPid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const until = Date.now() + 5000;
      while (isAlive(oldPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      if (isAlive(oldPid)) process.kill(oldPid, 'SIGKILL');
    }
    if (old) this.daemons.splice(this.daemons.indexOf(old), 1);
    rmSync(c.socket, { force: true });
    const config = writeContainerdConfig(nodeDir, {
      ...(opts.configPath !== undefined ? { configPath: opts.configPath } : {}),
      ...(opts.extra !== undefined ? { extra: opts.extra } : {}),
    });
    const paths: ContainerdPaths = { socket: c.socket, configPath: c.configPath, config };
    const record = (d: Daemon): void => {
      this.daemons.push(d);
      this.state.pids[d.name] = d.pid;
      writeFileSync(stateFile(this.dir), JSON.stringify(this.state, null, 2), { mode: 0o600 });
    };
    await startContainerd(
      this.ns[node],
      name,
      paths,
      { resolvConf: this.paths.resolvConf[node], hosts: this.paths.hosts[node] },
      this.paths.logs,
      record,
      8000,
      opts.env ?? {},
    );
  }

  /** Add a fault (several may be active at once). */
  fault(name: FaultName, opts: FaultOptions = {}): void {
    if (isNftFault(name)) addFault(this.ns.router, name, opts);
    else this.setTokenMode(name === 'token-hang' ? 'hang' : name === 'token-error' ? 'error' : 'garbage', opts.subnet ?? 'A');
  }

  /** Remove every fault; restore default resolv.conf and hosts files (in place). */
  clear(): void {
    clearFaults(this.ns.router);
    this.setTokenMode('normal');
    for (const n of NODE_NAMES) {
      this.writeResolvConf(n, RESOLV_PRESETS.default);
      this.writeHosts(n, DEFAULT_HOSTS);
    }
  }

  /** Rewrite a node's resolv.conf IN PLACE (same inode; a rename would break running bind mounts). */
  writeResolvConf(node: NodeName, textOrPreset: string): void {
    const text = textOrPreset in RESOLV_PRESETS ? RESOLV_PRESETS[textOrPreset as ResolvPreset] : textOrPreset;
    writeFileSync(this.paths.resolvConf[node], text);
  }

  writeHosts(node: NodeName, text: string): void {
    writeFileSync(this.paths.hosts[node], text);
  }

  /** Image reference on a registry, e.g. ref('token.lab.test') → token.lab.test/lab/probe:v1. */
  ref(host: RegistryHost, repository = 'lab/probe', tag = 'v1'): string {
    return `${host}/${repository}:${tag}`;
  }

  /** Current nft fault rules (debugging). */
  rules(): string {
    return listRules(this.ns.router);
  }

  /** Stop every daemon, delete the namespaces, remove the run dir. Idempotent. */
  async down(): Promise<void> {
    if (this.downDone) return;
    this.downDone = true;
    this.removeHooks();
    const exits = this.daemons.map(
      (d) =>
        new Promise<void>((res) => {
          if (d.child.exitCode !== null || d.child.signalCode !== null) res();
          else d.child.once('exit', () => res());
        }),
    );
    for (const d of this.daemons) {
      try {
        process.kill(d.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000))]);
    teardownRunSync(this.state, this.keep);
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000))]);
  }

  /** PID of a node's containerd (its /proc/<pid>/environ is what --proxy-from-pid reads). */
  containerdPid(node: NodeName): number {
    const pid = this.state.pids[`containerd-${node}`];
    if (pid === undefined) throw new Error('no containerd: Lab.up({ containerd: true })');
    return pid;
  }

  /** PIDs of the daemons this lab started (for leak checks). */
  pids(): number[] {
    return Object.values(this.state.pids);
  }

  private installHooks(): this {
    const sync = (): void => {
      if (this.downDone) return;
      this.downDone = true;
      teardownRunSync(this.state, this.keep);
    };
    const onSignal = (sig: unknown): void => {
      sync();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    this.hooks.push(['exit', sync], ['SIGINT', onSignal], ['SIGTERM', onSignal]);
    for (const [ev, fn] of this.hooks) process.on(ev, fn);
    return this;
  }

  private removeHooks(): void {
    for (const [ev, fn] of this.hooks) process.removeListener(ev, fn);
    this.hooks.length = 0;
  }

  /** The token service applies the mode to requests from `subnet` only (the token server sees node addresses: no NAT). */
  private setTokenMode(mode: 'normal' | 'hang' | 'error' | 'garbage', subnet: 'A' | 'B' | 'all' = 'all'): void {
    const cidrs = subnet === 'all' ? '' : ` ${SUBNETS[subnet]}`;
    if (this.state.tokenModeFile && existsSync(this.state.tokenModeFile)) writeFileSync(this.state.tokenModeFile, `${mode}${cidrs}\n`);
  }
}
