/**
 * The OAuth POST token request containerd makes when it holds a secret (pull-path-facts
 * §1.3; containerd remotes/docker/auth/fetch.go FetchTokenWithOAuth): the form, how the
 * password appears in it (for scrubbing), and the request itself, its answer read with
 * the same bound as a GET's.
 */
import type { Dispatcher } from 'undici';
import { send, type SendResult } from '../net/dispatcher.js';
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

/** The OAuth POST, through the shared send() (its answer read with the same bound as a GET's). */
export function postForm(url: string, form: URLSearchParams, dispatcher: Dispatcher, signal: AbortSignal): Promise<SendResult> {
  return send(url, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: form.toString(),
    dispatcher,
    signal,
    maxBody: MAX_TOKEN_BODY,
  });
}
