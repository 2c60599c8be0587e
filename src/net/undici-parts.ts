/**
 * The parts of undici pullprobe uses (Agent, Client, buildConnector, errors,
 * request), loaded from their own modules. undici's index.js also loads
 * fetch, WebSocket, EventSource, cookies, cache stores and mocks: about three
 * times the code, ~90 ms of CPU on every CLI start that probes (issue 10).
 * The classes are undici's own; `request` is undici's top-level request()
 * minus the global dispatcher: a dispatcher is always given. Static imports
 * (types in undici-lib.d.ts), so a bundler can take exactly these modules.
 */
import type * as Undici from 'undici';
import DispatcherBase from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import ClientClass from 'undici/lib/dispatcher/client.js';
import connector from 'undici/lib/core/connect.js';
import undiciErrors from 'undici/lib/core/errors.js';

// index.js gives every dispatcher request()/stream()/… by assigning the api to the base class; so does this.
Object.assign(DispatcherBase.prototype, api);

export const Agent = AgentClass;
export const Client = ClientClass;
export const buildConnector = connector;
export const errors = undiciErrors;

export type { Dispatcher } from 'undici';
export type Agent = Undici.Agent;
export type Client = Undici.Client;

export type RequestOptions = { dispatcher: Undici.Dispatcher } & Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> &
  Partial<Pick<Undici.Dispatcher.RequestOptions, 'method'>>;

/** undici's request(url, opts) with `opts.dispatcher` required. */
export function request(url: string | URL, opts: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = opts;
  return dispatcher.request({
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: opts.method ?? (opts.body ? 'PUT' : 'GET'),
  });
}
