/**
 * The last WWW-Authenticate challenges each registry host sent, kept beside
 * the token cache they serve (same owner, same lifetime: a challenge is
 * only useful with the token it leads to). With them, a probe can send the
 * cached token on its first request, as containerd's authorizer does for a
 * host it has seen: a steady-state probe is one authorized HEAD.
 */
import type { Challenge } from './www-authenticate.js';

const MAX_HOSTS = 256;
const memories = new WeakMap<object, Map<string, Challenge[]>>();

/** The challenges `endpoint` last sent, under `owner` (the probe's TokenCache). */
export function rememberedChallenges(owner: object, endpoint: string): Challenge[] | undefined {
  return memories.get(owner)?.get(endpoint.toLowerCase());
}

/** Remember (or, with an empty list, forget) what `endpoint` challenges with. */
export function rememberChallenges(owner: object, endpoint: string, challenges: readonly Challenge[]): void {
  const key = endpoint.toLowerCase();
  let m = memories.get(owner);
  const usable = challenges.filter((c) => c.scheme === 'bearer' || c.scheme === 'basic');
  if (usable.length === 0) {
    m?.delete(key);
    return;
  }
  if (!m) memories.set(owner, (m = new Map<string, Challenge[]>()));
  m.delete(key);
  m.set(key, usable);
  if (m.size > MAX_HOSTS) m.delete(m.keys().next().value as string);
}
