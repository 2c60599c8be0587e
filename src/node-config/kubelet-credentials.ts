/**
 * The credentials a pull of one image gets on this node, in the order the kubelet and
 * containerd give them (pull-path-facts §2.5, §3):
 *
 * 1. the kubelet's keyring: a union, in order, of each docker config keyring (the
 *    caller lists them: a `--docker-config` file first, as the kubelet puts pull
 *    secrets first, then the node's own file from `kubeletDockerConfigPaths`), then one
 *    keyring holding every matching credential-provider plugin's answer (config
 *    order). Within a keyring the kubelet's BasicDockerKeyring order holds (keys in
 *    reverse byte order, Docker Hub names falling back to `index.docker.io`). The kubelet
 *    tries them in turn; the probe uses the first and lists the rest as `candidates`.
 *    The kubelet sets no ServerAddress, so containerd offers them to whichever host it
 *    contacts (mirrors too).
 * 2. only when the keyring matched nothing (the kubelet then sends no AuthConfig):
 *    containerd's `registry.configs.<host>.auth` for the host actually contacted.
 *
 * A keyring entry without a secret (an `identitytoken`-only docker config entry, which
 * the kubelet does not read, or an empty one) still counts: the kubelet passes empty
 * credentials and containerd pulls anonymously without looking at its own config.
 */
import type { Credential } from '../model/types.js';
import type { CredentialProviders } from './credential-provider.js';
import { repositoryOf } from './credential-provider.js';
import type { DockerAuthEntry, DockerAuths } from './docker-config.js';
import { keyringLookup } from './kubelet-keyring.js';
import { ecrTokenExpiry } from './ecr-token.js';

export interface CredentialSources {
  providers?: CredentialProviders;
  /** Docker config keyrings in the kubelet's union order. */
  dockerConfigs: Array<{ file: string; auths: DockerAuths }>;
  /** containerd's own `registry.configs.<host>.auth` (containerd-config.ts containerdAuth). */
  containerd?: { auths: (host: string) => Credential | undefined };
}

export interface KubeletCredential {
  /** The first credential the pull is tried with; absent: anonymous. */
  credential?: Credential;
  /** Every keyring credential with a secret, in the order the kubelet tries them (credential first). */
  candidates: Credential[];
  /**
   * The kubelet's keyring matched (it sends an AuthConfig, so containerd never looks at its
   * own config.toml auth). When false, another contacted host (a mirror) gets
   * `sources.containerd.auths(thatHost)`: no need to run the plugins again for it.
   */
  keyringMatched: boolean;
  /** What could not be used and why (plugin failures, entries the kubelet reads as empty). Never a secret. */
  problems: string[];
}

interface Keyed {
  key: string;
  credential: Credential | null;
  /** Why `credential` is null. */
  empty?: string;
}

function fromDockerConfig(file: string, e: DockerAuthEntry): Keyed {
  const where = `${file}: auths[${JSON.stringify(e.key)}]`;
  if (e.identityToken)
    return { key: e.key, credential: null, empty: `${where} holds only an identitytoken, which the kubelet does not read` };
  return {
    key: e.key,
    credential: {
      username: e.username,
      password: e.password,
      source: where,
      origin: { source: 'docker-config', name: file, expiresAt: ecrTokenExpiry(e.password) },
    },
  };
}

/** Resolve the credential for `image`, contacting `host`. `ctx.deadlineMs`: milliseconds left for plugins. */
export async function resolveKubeletCredential(
  sources: CredentialSources,
  image: { registry: string; repository: string },
  host: string,
  ctx: { signal: AbortSignal; deadlineMs: number },
): Promise<KubeletCredential> {
  const repo = repositoryOf(image);
  const problems: string[] = [];
  const matched: Keyed[] = [];
  for (const dc of sources.dockerConfigs) {
    matched.push(...keyringLookup(dc.auths.entries, repo).map((e) => fromDockerConfig(dc.file, e)));
  }
  if (sources.providers) {
    const looked = await sources.providers.lookup(repo, ctx);
    problems.push(...looked.problems);
    const file = sources.providers.config.file;
    const entries: Keyed[] = looked.results.flatMap((r) =>
      r.auths.map((a) => ({
        key: a.key,
        credential: {
          username: a.username,
          password: a.password,
          source: `credential provider ${r.provider} (${file}): auth[${JSON.stringify(a.key)}]`,
          origin: { source: 'credential-provider' as const, name: r.provider, expiresAt: r.expiresAt },
        },
      })),
    );
    matched.push(...keyringLookup(entries, repo));
  }
  const candidates: Credential[] = [];
  for (const m of matched) {
    if (m.credential && (m.credential.username !== '' || m.credential.password !== '')) candidates.push(m.credential);
    else
      problems.push(
        `${m.empty ?? `${m.credential?.source ?? m.key} has no username or password`}: the kubelet passes empty credentials for it`,
      );
  }
  const first = candidates[0];
  const keyringMatched = matched.length > 0;
  if (first) return { credential: first, candidates, keyringMatched, problems };
  if (keyringMatched) return { candidates, keyringMatched, problems };
  const fromContainerd = sources.containerd?.auths(host);
  if (fromContainerd) return { credential: fromContainerd, candidates: [fromContainerd], keyringMatched, problems };
  return { candidates, keyringMatched, problems };
}
