/**
 * Pure resolv.conf parser, faithful to glibc's res_init (resolv/res_init.c):
 * keywords must start the line and be followed by a space or tab, comments
 * are `#` or `;` in the first column only, `domain` and `search` replace each
 * other (last wins), only the first MAXNS (3) nameservers are used, and
 * `options` values are read with atoi and capped as glibc caps them. With
 * no `search` or `domain` line the search list is the host name's domain
 * (the part after its first dot), as res_init takes it from gethostname();
 * the caller passes the host name (the parser does no I/O).
 * Environment overrides (LOCALDOMAIN, RES_OPTIONS) are not applied here.
 *
 * Linear in the input: one pass over the text, no regular expressions, and
 * at most MAX_WARNINGS warnings and MAX_LISTED nameservers kept, so a
 * 10 MB or hostile file costs milliseconds.
 */
import { isIP } from 'node:net';

/** glibc MAXNS: nameservers beyond the third are ignored by the resolver. */
export const MAXNS = 3;
/** Nameservers past MAXNS are still listed (glibc keeps them too), up to this many. */
export const MAX_LISTED = 32;
/** Warnings kept per file; the rest are counted in a last one. */
export const MAX_WARNINGS = 50;
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
  /** The search domain was taken from the host name (no search/domain line). */
  searchFromHostname?: boolean;
  warnings: string[];
  /** The file actually read (after links, systemd-resolved's upstream list); set by the loader. */
  file?: string;
  /** Problems reading the node's files (unreadable, fallback used); set by the loader, shown with the DNS step. */
  problems?: string[];
}

export interface ParseResolvConfOptions {
  /** The node's host name (gethostname). Omitted: no search domain is derived from it. */
  hostname?: string;
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
  'debug',
  'inet6',
  'ip6-bytestring',
  'ip6-dotint',
  'no-ip6-dotint',
  'edns0',
  'single-request',
  'single-request-reopen',
  'no-check-names',
  'use-vc',
  'trust-ad',
  'no-reload',
  'no-aaaa',
  'rotate',
  'no-tld-query',
]);

/** Could start an IP address (hex digit or ':'): skips isIP's regexes for most junk. */
function mayBeIp(s: string): boolean {
  const c = s.charCodeAt(0) | 0x20;
  return (c >= 48 && c <= 58) || (c >= 97 && c <= 102);
}

/** 4, 6 or 0 for an address that may carry an IPv6 zone ("fe80::1%eth0"). */
export function ipFamily(address: string): number {
  if (!mayBeIp(address)) return 0;
  const pct = address.indexOf('%');
  return isIP(pct < 0 ? address : address.slice(0, pct));
}

/** C atoi: leading blanks, optional sign, digits; anything else stops; no digits → 0. */
function atoi(s: string): number {
  let i = 0;
  while (s[i] === ' ' || s[i] === '\t') i++;
  let sign = 1;
  if (s[i] === '+' || s[i] === '-') {
    if (s[i] === '-') sign = -1;
    i++;
  }
  let v = 0;
  let digits = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    // Clamp long digit runs: glibc caps every value far below this anyway.
    if (v < 1e9) v = v * 10 + c;
    digits++;
  }
  return digits === 0 ? 0 : sign * v;
}

function keyword(line: string, name: string): string | undefined {
  if (!line.startsWith(name)) return undefined;
  const next = line[name.length];
  return next === ' ' || next === '\t' ? line.slice(name.length + 1) : undefined;
}

/** space or tab */
const isBlank = (c: number): boolean => c === 32 || c === 9;

/** Words separated by blanks (space, tab), as glibc's strpbrk(" \t\n") loop reads them. */
function words(s: string, limit = Infinity): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length && out.length < limit) {
    while (i < s.length && isBlank(s.charCodeAt(i))) i++;
    const start = i;
    while (i < s.length && !isBlank(s.charCodeAt(i))) i++;
    if (i > start) out.push(s.slice(start, i));
  }
  return out;
}

function hasWord(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isBlank(s.charCodeAt(i))) return true;
  return false;
}

function isBlankLine(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 32 && (c < 9 || c > 13)) return false;
  }
  return true;
}

/** Calls fn for every line ('\n'-separated), with its 1-based number; skips empty lines cheaply. */
export function forEachLine(text: string, fn: (line: string, lineNo: number) => void): void {
  let start = 0;
  let n = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    n++;
    if (end > start) fn(text.slice(start, end), n);
    start = end + 1;
  }
}

/** A bounded warning list: the first `max`, then one line counting the rest. */
export class WarningList {
  readonly list: string[] = [];
  private dropped = 0;
  constructor(private readonly max = MAX_WARNINGS) {}
  /**
   * True when one more warning is kept; false counts it as dropped. Callers
   * build the message only when this says yes (`if (w.want()) w.add(…)`).
   */
  want(): boolean {
    if (this.list.length < this.max) return true;
    this.dropped++;
    return false;
  }
  add(message: string): void {
    if (this.list.length < this.max) this.list.push(message);
  }
  /** A summary warning kept even when the list is full. */
  always(message: string): void {
    this.list.push(message);
  }
  done(): string[] {
    if (this.dropped > 0) this.list.push(`${this.dropped} more warnings not shown`);
    return this.list;
  }
}

/** glibc domain_from_hostname: the part after the first dot, if any. */
export function domainFromHostname(hostname: string | undefined): string | undefined {
  if (hostname === undefined) return undefined;
  const dot = hostname.indexOf('.');
  if (dot < 0) return undefined;
  const domain = hostname.slice(dot + 1);
  // glibc would take "" from "host."; a root-only search list changes nothing useful.
  return domain === '' ? undefined : domain;
}

export function parseResolvConf(text: string, opts: ParseResolvConfOptions = {}): ResolvConf {
  const conf: ResolvConf = {
    nameservers: [],
    search: [],
    ...DEFAULT_RESOLV_CONF,
    warnings: [],
  };
  const warnings = new WarningList();
  let search: { kind: 'domain' | 'search'; rest: string; n: number } | undefined;
  let nameserverLines = 0;
  forEachLine(text, (raw, n) => {
    let line = raw;
    if (line.endsWith('\r')) {
      line = line.slice(0, -1);
      if (warnings.want()) warnings.add(`line ${n}: CRLF line ending (glibc keeps the carriage return in the value)`);
    }
    if (line.startsWith('#') || line.startsWith(';') || isBlankLine(line)) return;

    let rest: string | undefined;
    if ((rest = keyword(line, 'domain')) !== undefined) {
      // The last domain/search line wins: only its words are split (at the end).
      if (hasWord(rest)) search = { kind: 'domain', rest, n };
    } else if ((rest = keyword(line, 'search')) !== undefined) {
      if (hasWord(rest)) search = { kind: 'search', rest, n };
    } else if ((rest = keyword(line, 'nameserver')) !== undefined) {
      const addr = words(rest, 1)[0];
      if (addr === undefined || ipFamily(addr) === 0) {
        if (warnings.want())
          warnings.add(`line ${n}: nameserver is not an IP address: ${addr === undefined ? '(empty)' : addr.slice(0, 60)}`);
        return;
      }
      nameserverLines++;
      const used = conf.nameservers.length < MAXNS;
      if (!used && warnings.want()) warnings.add(`line ${n}: nameserver ${addr.slice(0, 60)} ignored: glibc uses at most ${MAXNS}`);
      if (conf.nameservers.length < MAX_LISTED) conf.nameservers.push({ address: addr, port: 53, used });
    } else if ((rest = keyword(line, 'options')) !== undefined) {
      for (const opt of words(rest)) parseOption(conf, opt, warnings, n);
    } else if (keyword(line, 'sortlist') !== undefined) {
      // Orders answers only; irrelevant to reachability.
    } else {
      if (warnings.want()) warnings.add(`line ${n}: unrecognised line ignored by glibc: ${line.slice(0, 60).trim()}`);
    }
  });
  if (conf.nameservers.length === 0) {
    conf.nameservers.push({ address: '127.0.0.1', port: 53, used: true });
    conf.defaultNameserver = true;
    warnings.always('no nameserver line: glibc uses 127.0.0.1');
  }
  if (nameserverLines > MAX_LISTED) warnings.always(`${nameserverLines - MAX_LISTED} more nameserver lines not listed`);
  if (search?.kind === 'domain') {
    conf.search = words(search.rest, 1);
  } else if (search !== undefined) {
    conf.search = words(search.rest);
    if (conf.search.some((w) => w.startsWith('#') || w.startsWith(';'))) {
      warnings.always(`line ${search.n}: inline comment on a search line: glibc reads it as search domains`);
    }
  } else {
    const domain = domainFromHostname(opts.hostname);
    if (domain !== undefined) {
      conf.search = [domain];
      conf.searchFromHostname = true;
    }
  }
  conf.warnings = warnings.done();
  return conf;
}

/** The number after `prefix` in an option (C atoi), or undefined when the option is another one. */
function numeric(opt: string, prefix: string): number | undefined {
  return opt.startsWith(prefix) ? atoi(opt.slice(prefix.length)) : undefined;
}

function parseOption(conf: ResolvConf, opt: string, warnings: WarningList, n: number): void {
  let v: number | undefined;
  let problem: string | undefined;
  if ((v = numeric(opt, 'ndots:')) !== undefined) {
    // res_state.ndots is a 4-bit field: a negative value wraps.
    conf.ndots = v > RES_MAXNDOTS ? RES_MAXNDOTS : v & 0xf;
    if (v > RES_MAXNDOTS || v < 0) problem = `ndots:${v} out of range, glibc uses ${conf.ndots}`;
  } else if ((v = numeric(opt, 'timeout:')) !== undefined) {
    conf.timeoutSeconds = Math.min(v, RES_MAXRETRANS);
    if (v > RES_MAXRETRANS) problem = `timeout:${v} capped at ${RES_MAXRETRANS}`;
    if (v <= 0) problem = `timeout:${v}: glibc waits at least 1 second`;
  } else if ((v = numeric(opt, 'attempts:')) !== undefined) {
    conf.attempts = Math.min(v, RES_MAXRETRY);
    if (v > RES_MAXRETRY) problem = `attempts:${v} capped at ${RES_MAXRETRY}`;
    if (v <= 0) problem = `attempts:${v}: glibc sends no query at all`;
  } else if (opt === 'rotate') {
    conf.rotate = true;
  } else if (opt === 'no-tld-query') {
    conf.noTldQuery = true;
  } else if (!KNOWN_FLAGS.has(opt)) {
    problem = `unknown option ignored: ${opt.slice(0, 60)}`;
  }
  if (problem !== undefined && warnings.want()) warnings.add(`line ${n}: ${problem}`);
}

/** The nameservers glibc actually queries, in order. */
export function usedNameservers(conf: ResolvConf): Nameserver[] {
  return conf.nameservers.filter((ns) => ns.used);
}
