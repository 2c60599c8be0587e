/**
 * The OAuth POST token request containerd makes when it holds a secret (pull-path-facts
 * §1.3; containerd remotes/docker/auth/fetch.go FetchTokenWithOAuth): the form, how the
 * password appears in it (for scrubbing), and the request itself, its answer read with
 * the same bound as a GET's.
 */
import { request, type Dispatcher } from 'undici';
import type { SendResult } from '../net/dispatcher.js';
import type { Credential } from '../model/types.js';

/** Most bytes of a token answer read. */
export const MAX_TOKEN_BODY = 1 << 20;

/** containerd FetchTokenWithOAuth's form: scope (space-joined), service, client_id, then the grant. */
export function oauthForm(cred: Credential, service: string | undefined, scope: string | undefined): URLSearchParams {
  const form = new URLSearchParams();
  if (scope) form.set('scope', scope);
  form.set('service', service ?? '');
  form.set('client_id', 'containerd-client');
  if (cred.username === '') {
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', cred.password);
  } else {
    form.set('grant_type', 'password');
    form.set('username', cred.username);
    form.set('password', cred.password);
  }
  return form;
}

/** A value as form encoding writes it (spaces as "+"): how the password appears in the POST body. */
export const formValue = (v: string): string => new URLSearchParams({ v }).toString().slice(2);

/** The OAuth POST: undici directly (the shared send() speaks GET/HEAD only); the body read is bounded like send()'s. */
export async function postForm(url: string, form: URLSearchParams, dispatcher: Dispatcher, signal: AbortSignal): Promise<SendResult> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'user-agent': 'pullprobe', accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: form.toString(),
    dispatcher,
    signal,
  });
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    chunks.push(b);
    n += b.length;
    if (n >= MAX_TOKEN_BODY) break; // leaving the loop destroys the stream
  }
  return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).subarray(0, MAX_TOKEN_BODY).toString('utf8') };
}
