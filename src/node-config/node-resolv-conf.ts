/**
 * The node's resolv.conf as the node's resolver reads it: links followed
 * inside the host root, and on systemd-resolved nodes the file that lists the
 * real upstreams (/run/systemd/resolve/resolv.conf, the file the kubelet is
 * pointed at with --resolv-conf on such hosts) instead of the 127.0.0.53 stub.
 * Never throws: an unreadable file is a problem in the result, and the
 * resolver then behaves as glibc does without a file (nameserver 127.0.0.1).
 */
import { cannotRead, normaliseRoot, readNodeFile, realHostFs, type HostFs, type NodeFileRead } from './host-root.js';
import { parseResolvConf, usedNameservers, type ResolvConf } from './resolv-conf.js';

export const SYSTEMD_STUB = '/run/systemd/resolve/stub-resolv.conf';
export const SYSTEMD_UPSTREAMS = '/run/systemd/resolve/resolv.conf';
const STUB_ADDRESS = '127.0.0.53';

export interface NodeResolvConfOptions {
  path: string;
  hostRoot?: string;
  hostname?: string;
  fs?: HostFs;
}

export interface NodeResolvConf {
  conf: ResolvConf;
  /** The file the settings came from (null: none readable, glibc defaults). */
  file: string | null;
  /** The requested file could not be read at all. */
  unreadable: boolean;
  problems: string[];
}

function isStub(read: Extract<NodeFileRead, { ok: true }>, conf: ResolvConf): boolean {
  if (read.path.endsWith(SYSTEMD_STUB)) return true;
  const used = usedNameservers(conf);
  return !conf.defaultNameserver && used.length > 0 && used.every((n) => n.address === STUB_ADDRESS);
}

export function loadNodeResolvConf(opts: NodeResolvConfOptions): NodeResolvConf {
  const hfs = opts.fs ?? realHostFs;
  const root = normaliseRoot(opts.hostRoot);
  const parse = (text: string): ResolvConf => parseResolvConf(text, opts.hostname === undefined ? {} : { hostname: opts.hostname });
  const first = readNodeFile(opts.path, root, hfs);
  const upstreamsPath = `${root}${SYSTEMD_UPSTREAMS}`;
  if (first.ok) {
    const conf = parse(first.text);
    if (!isStub(first, conf)) return { conf, file: first.path, unreadable: false, problems: [] };
    const up = readNodeFile(upstreamsPath, root, hfs);
    if (up.ok) return { conf: parse(up.text), file: up.path, unreadable: false, problems: [] };
    return {
      conf,
      file: first.path,
      unreadable: false,
      problems: [`${cannotRead(upstreamsPath, up)}: using systemd-resolved's stub ${first.path} (${STUB_ADDRESS})`],
    };
  }
  // A link into systemd-resolved's directory that cannot be followed: the upstream list may still be there.
  if (first.path.endsWith(SYSTEMD_STUB) || first.path.endsWith(SYSTEMD_UPSTREAMS)) {
    const up = first.path.endsWith(SYSTEMD_UPSTREAMS) ? first : readNodeFile(upstreamsPath, root, hfs);
    if (up.ok) return { conf: parse(up.text), file: up.path, unreadable: false, problems: [] };
  }
  return {
    conf: parse(''),
    file: null,
    unreadable: true,
    problems: [`${cannotRead(opts.path, first)}; resolving as glibc does without it (nameserver 127.0.0.1)`],
  };
}
