/**
 * Pure resolv.conf parser, faithful to glibc's res_init (resolv/res_init.c):
 * keywords must start the line and be followed by a space or tab, comments
 * are `#` or `;` in the first column only, `domain` and `search` replace each
 * other (last wins), only the first MAXNS (3) nameservers are used, and
 * `options` values are read with atoi and capped as glibc caps them.
 * Environment overrides (LOCALDOMAIN, RES_OPTIONS) are not applied here.
 */
import { isIP } from 'node:net';

/** glibc MAXNS: nameservers beyond the third are ignored by the resolver. */
export const MAXNS = 3;
const RES_MAXNDOTS = 15;
const RES_MAXRETRANS = 30;
const RES_MAXRETRY = 5;

export interface Nameserver {
  address: string;
  port: number;
  /** False for nameservers past MAXNS, which glibc ignores. */
  used: boolean;
}

export interface ResolvConf {
  nameservers: Nameserver[];
  search: string[];
  ndots: number;
  timeoutSeconds: number;
  attempts: number;
  rotate: boolean;
  /** `options no-tld-query`: a dotless name is never tried as-is. */
  noTldQuery: boolean;
  /** True when the file names no usable nameserver and glibc falls back to 127.0.0.1. */
  defaultNameserver: boolean;
  warnings: string[];
}

export const DEFAULT_RESOLV_CONF: Readonly<Omit<ResolvConf, 'nameservers' | 'search' | 'warnings'>> = {
  ndots: 1,
  timeoutSeconds: 5,
  attempts: 2,
  rotate: false,
  noTldQuery: false,
  defaultNameserver: false,
};

/** Options glibc knows and that do not change which queries are sent. */
const KNOWN_FLAGS = new Set([
  'debug', 'inet6', 'ip6-bytestring', 'ip6-dotint', 'no-ip6-dotint', 'edns0', 'single-request',
  'single-request-reopen', 'no-check-names', 'use-vc', 'trust-ad', 'no-reload', 'no-aaaa', 'rotate',
  'no-tld-query',
]);

/** C atoi: optional sign, leading digits, anything else stops; no digits → 0. */
function atoi(s: string): number {
  const m = /^[ \t]*([+-]?\d+)/.exec(s);
  return m?.[1] === undefined ? 0 : Number.parseInt(m[1], 10);
}

function keyword(line: string, name: string): string | undefined {
  if (!line.startsWith(name)) return undefined;
  const next = line[name.length];
  return next === ' ' || next === '\t' ? line.slice(name.length + 1) : undefined;
}

function words(s: string): string[] {
  return s.split(/[ \t]+/).filter((w) => w.length > 0);
}

export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = {
    nameservers: [],
    search: [],
    ...DEFAULT_RESOLV_CONF,
    warnings: [],
  };
  const warn = (lineNo: number, msg: string): void => {
    conf.warnings.push(`line ${lineNo}: ${msg}`);
  };
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const n = i + 1;
    let line = raw;
    if (line.endsWith('\r')) {
      line = line.slice(0, -1);
      warn(n, 'CRLF line ending (glibc keeps the carriage return in the value)');
    }
    if (line.trim() === '' || line.startsWith('#') || line.startsWith(';')) return;

    let rest: string | undefined;
    if ((rest = keyword(line, 'domain')) !== undefined) {
      const first = words(rest)[0];
      if (first !== undefined) conf.search = [first];
    } else if ((rest = keyword(line, 'search')) !== undefined) {
      const list = words(rest);
      if (list.length === 0) return;
      const hash = list.findIndex((w) => w.startsWith('#') || w.startsWith(';'));
      if (hash >= 0) warn(n, 'inline comment on a search line: glibc reads it as search domains');
      conf.search = list;
    } else if ((rest = keyword(line, 'nameserver')) !== undefined) {
      const addr = words(rest)[0];
      if (addr === undefined || isIP(addr.split('%')[0] ?? '') === 0) {
        warn(n, `nameserver is not an IP address: ${addr ?? '(empty)'}`);
        return;
      }
      const used = conf.nameservers.length < MAXNS;
      if (!used) warn(n, `nameserver ${addr} ignored: glibc uses at most ${MAXNS}`);
      conf.nameservers.push({ address: addr, port: 53, used });
    } else if ((rest = keyword(line, 'options')) !== undefined) {
      for (const opt of words(rest)) parseOption(conf, opt, (msg) => warn(n, msg));
    } else if (keyword(line, 'sortlist') !== undefined) {
      // Orders answers only; irrelevant to reachability.
    } else {
      warn(n, `unrecognised line ignored by glibc: ${line.trim().slice(0, 60)}`);
    }
  });
  if (conf.nameservers.length === 0) {
    conf.nameservers.push({ address: '127.0.0.1', port: 53, used: true });
    conf.defaultNameserver = true;
    conf.warnings.push('no nameserver line: glibc uses 127.0.0.1');
  }
  return conf;
}

function parseOption(conf: ResolvConf, opt: string, warn: (msg: string) => void): void {
  const numeric = (prefix: string): number | undefined =>
    opt.startsWith(prefix) ? atoi(opt.slice(prefix.length)) : undefined;
  let v: number | undefined;
  if ((v = numeric('ndots:')) !== undefined) {
    // res_state.ndots is a 4-bit field: a negative value wraps.
    conf.ndots = v > RES_MAXNDOTS ? RES_MAXNDOTS : v & 0xf;
    if (v > RES_MAXNDOTS || v < 0) warn(`ndots:${v} out of range, glibc uses ${conf.ndots}`);
  } else if ((v = numeric('timeout:')) !== undefined) {
    conf.timeoutSeconds = Math.min(v, RES_MAXRETRANS);
    if (v > RES_MAXRETRANS) warn(`timeout:${v} capped at ${RES_MAXRETRANS}`);
    if (v <= 0) warn(`timeout:${v}: glibc waits at least 1 second`);
  } else if ((v = numeric('attempts:')) !== undefined) {
    conf.attempts = Math.min(v, RES_MAXRETRY);
    if (v > RES_MAXRETRY) warn(`attempts:${v} capped at ${RES_MAXRETRY}`);
    if (v <= 0) warn(`attempts:${v}: glibc sends no query at all`);
  } else if (opt === 'rotate') {
    conf.rotate = true;
  } else if (opt === 'no-tld-query') {
    conf.noTldQuery = true;
  } else if (!KNOWN_FLAGS.has(opt)) {
    warn(`unknown option ignored: ${opt}`);
  }
}

/** The nameservers glibc actually queries, in order. */
export function usedNameservers(conf: ResolvConf): Nameserver[] {
  return conf.nameservers.filter((ns) => ns.used);
}
