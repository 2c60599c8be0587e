/**
 * The Pods bound to one node, kept current by list + watch
 * (`fieldSelector=spec.nodeName=<node>`), the way client-go's reflector does:
 * list once, watch from the list's resourceVersion, re-watch from the last
 * resourceVersion seen when a watch closes, relist when the server says 410
 * Gone. Relists and errors back off (doubling, bounded); a watch that brings
 * events resets the backoff. A 403 on the list stops the loop and says so
 * once through `onForbidden` (no RBAC: discovery off, the agent runs on).
 */
import type { KubeReader } from './client.js';
import { KubeApiError } from '../shared/errors.js';
import { unrefTimers, type Timers } from '../shared/timers.js';

/** The parts of a core/v1 Pod discovery reads. */
export interface KubePod {
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string };
  spec?: { nodeName?: string; containers?: PodContainer[]; initContainers?: PodContainer[] };
  status?: { containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
}
export interface PodContainer {
  name: string;
  image?: string;
}
export interface ContainerStatus {
  name: string;
  image?: string;
  state?: { waiting?: { reason?: string; message?: string } };
}

export interface PodWatchLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PodWatchOptions {
  reader: KubeReader;
  node: string;
  /** Called with every Pod of the node (by `namespace/name`) after each list and each watch event. */
  onChange(pods: ReadonlyMap<string, KubePod>): void;
  /** The list answered 403: no RBAC for pods; the loop has stopped. */
  onForbidden?(message: string): void;
  timers?: Timers;
  log?: PodWatchLog;
  /** First backoff after an error, a 410 relist or an empty watch (default 1 s); doubles up to maxBackoffMs (default 60 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Asked of the server per watch (default 300). */
  watchTimeoutSeconds?: number;
}

interface WatchEvent {
  type?: unknown;
  object?: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function keyOf(pod: KubePod): string {
  return `${pod.metadata.namespace}/${pod.metadata.name}`;
}

function asPod(v: unknown): KubePod | null {
  if (!isObj(v) || !isObj(v.metadata)) return null;
  const { name, namespace } = v.metadata;
  if (typeof name !== 'string' || typeof namespace !== 'string') return null;
  return v as unknown as KubePod;
}

/** A 410 Gone: the resourceVersion is too old; only a relist helps. */
class Gone extends Error {}

export class PodWatch {
  private readonly pods = new Map<string, KubePod>();
  private rv: string | null = null;
  private readonly ac = new AbortController();
  private running: Promise<void> | null = null;
  private readonly timers: Timers;
  private backoffMs: number;
  /** What happened, in order, for tests and the debug log: `list`, `watch`, `relist`, `backoff:<ms>`. */
  readonly history: string[] = [];

  constructor(private readonly opts: PodWatchOptions) {
    this.timers = opts.timers ?? unrefTimers;
    this.backoffMs = opts.initialBackoffMs ?? 1000;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops the loop and the open watch; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.ac.abort();
    await this.running;
  }

  /** The Pods currently known. */
  current(): ReadonlyMap<string, KubePod> {
    return this.pods;
  }

  private get stopped(): boolean {
    return this.ac.signal.aborted;
  }

  private get selector(): string {
    return encodeURIComponent(`spec.nodeName=${this.opts.node}`);
  }

  private async loop(): Promise<void> {
    const signal = this.ac.signal;
    let listed = false;
    while (!signal.aborted) {
      try {
        if (this.rv === null) {
          this.history.push(listed ? 'relist' : 'list');
          await this.list();
          listed = true;
        }
        this.history.push('watch');
        const events = await this.watch();
        if (events > 0) this.backoffMs = this.opts.initialBackoffMs ?? 1000;
        else await this.backoff();
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof Gone || (err instanceof KubeApiError && err.status === 410)) {
          this.rv = null;
          this.opts.log?.info({ node: this.opts.node }, 'pod watch expired; listing again');
          await this.backoff();
          continue;
        }
        if (!listed && err instanceof KubeApiError && err.status === 403) {
          this.opts.onForbidden?.(err.message);
          return;
        }
        this.opts.log?.warn({ error: err instanceof Error ? err.message : 'error' }, 'pod discovery: list or watch failed; retrying');
        await this.backoff();
      }
    }
  }

  private async backoff(): Promise<void> {
    const ms = this.backoffMs;
    this.history.push(`backoff:${ms}`);
    this.backoffMs = Math.min(ms * 2, this.opts.maxBackoffMs ?? 60_000);
    const signal = this.ac.signal;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const onAbort = (): void => {
        this.timers.clearTimeout(handle);
        resolve();
      };
      const handle = this.timers.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async list(): Promise<void> {
    const body = await this.opts.reader.getJson(`/api/v1/pods?fieldSelector=${this.selector}`, this.ac.signal);
    if (!isObj(body) || !Array.isArray(body.items)) throw new Error('pod list: not a PodList');
    this.pods.clear();
    for (const item of body.items) {
      const pod = asPod(item);
      if (pod) this.pods.set(keyOf(pod), pod);
    }
    const rv = isObj(body.metadata) ? body.metadata.resourceVersion : undefined;
    this.rv = typeof rv === 'string' && rv !== '' ? rv : '0';
    this.opts.onChange(this.pods);
  }

  /** One watch until the server closes it; returns how many events it brought. */
  private async watch(): Promise<number> {
    const timeout = this.opts.watchTimeoutSeconds ?? 300;
    const path =
      `/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=${timeout}` +
      `&fieldSelector=${this.selector}&resourceVersion=${encodeURIComponent(this.rv ?? '0')}`;
    let count = 0;
    for await (const line of this.opts.reader.streamLines(path, this.ac.signal)) {
      let ev: WatchEvent;
      try {
        ev = JSON.parse(line) as WatchEvent;
      } catch {
        continue;
      }
      if (ev.type === 'ERROR') {
        const code = isObj(ev.object) ? ev.object.code : undefined;
        if (code === 410) throw new Gone('resourceVersion too old');
        throw new Error(`watch error${typeof code === 'number' ? ` ${code}` : ''}`);
      }
      const pod = asPod(ev.object);
      if (!pod) continue;
      count++;
      if (typeof pod.metadata.resourceVersion === 'string') this.rv = pod.metadata.resourceVersion;
      if (ev.type === 'BOOKMARK') continue;
      if (ev.type === 'DELETED') this.pods.delete(keyOf(pod));
      else if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.pods.set(keyOf(pod), pod);
      else continue;
      this.opts.onChange(this.pods);
    }
    return count;
  }
}
