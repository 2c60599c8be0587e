/**
 * kubelet credential-provider plugins for the lab, written as small shell
 * executables, and the CredentialProviderConfig that points at them.
 *
 *   const p = writeProviders(join(lab.dir, 'providers'), lab.credentials, ['basic.lab.test', 'token.lab.test']);
 *   // p.binDir, p.config.good / p.config.failing / p.config.hanging, p.calls (one line per exec of the good one)
 *
 * - lab-good: reads the request from stdin, appends its image to `calls`,
 *   answers the lab user's credentials for each matched registry with
 *   cacheKeyType Registry and cacheDuration 10m.
 * - lab-failing: writes to stderr and exits 1.
 * - lab-hanging: never answers (sleeps; the caller's timeout must end it).
 *
 * In a cluster the kubelet execs the plugin and passes its credentials in
 * the CRI AuthConfig; `providerAuth` gives that same AuthConfig.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabCredentials } from './pki.js';

export const PROVIDER_API = 'credentialprovider.kubelet.k8s.io/v1';
export const PROVIDER_CACHE_DURATION = '10m';

export interface LabProviders {
  binDir: string;
  /** CredentialProviderConfig files, one per plugin. */
  config: { good: string; failing: string; hanging: string };
  /** Log of the good plugin's calls: one image per line. */
  calls: string;
}

/** The CredentialProviderResponse the good plugin prints (pure). */
export function providerResponse(registries: string[], creds: Pick<LabCredentials, 'user' | 'password'>): string {
  const auth = Object.fromEntries(registries.map((r) => [r, { username: creds.user, password: creds.password }]));
  return JSON.stringify({
    apiVersion: PROVIDER_API,
    kind: 'CredentialProviderResponse',
    cacheKeyType: 'Registry',
    cacheDuration: PROVIDER_CACHE_DURATION,
    auth,
  });
}

/** A kubelet CredentialProviderConfig (v1) naming one plugin (pure). */
export function providerConfigYaml(name: string, matchImages: string[]): string {
  return [
    'apiVersion: kubelet.config.k8s.io/v1',
    'kind: CredentialProviderConfig',
    'providers:',
    `  - name: ${name}`,
    '    matchImages:',
    ...matchImages.map((m) => `      - "${m}"`),
    '    defaultCacheDuration: "5m"',
    `    apiVersion: ${PROVIDER_API}`,
    '',
  ].join('\n');
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function writeProviders(dir: string, creds: Pick<LabCredentials, 'user' | 'password'>, registries: string[]): LabProviders {
  const binDir = join(dir, 'bin');
  mkdirSync(binDir, { recursive: true });
  const calls = join(dir, 'calls.log');
  writeFileSync(calls, '');
  const scripts: Record<string, string> = {
    'lab-good': [
      '#!/bin/sh',
      'req=$(cat)',
      `printf '%s\\n' "$req" | sed -n 's/.*"image" *: *"\\([^"]*\\)".*/\\1/p' >> ${sq(calls)}`,
      `printf '%s\\n' ${sq(providerResponse(registries, creds))}`,
      '',
    ].join('\n'),
    'lab-failing': ['#!/bin/sh', 'cat >/dev/null', 'echo "lab-failing: cannot reach the identity service" >&2', 'exit 1', ''].join('\n'),
    'lab-hanging': ['#!/bin/sh', 'exec sleep 600', ''].join('\n'),
  };
  for (const [name, text] of Object.entries(scripts)) {
    const p = join(binDir, name);
    writeFileSync(p, text, { mode: 0o700 });
    chmodSync(p, 0o700);
  }
  const cfg = (name: string): string => {
    const p = join(dir, `${name}.yaml`);
    writeFileSync(p, providerConfigYaml(name, registries));
    return p;
  };
  return { binDir, config: { good: cfg('lab-good'), failing: cfg('lab-failing'), hanging: cfg('lab-hanging') }, calls };
}

/** The AuthConfig the kubelet passes to the CRI with a plugin's credentials (username/password; no server_address). */
export function providerAuth(creds: Pick<LabCredentials, 'user' | 'password'>): { username: string; password: string } {
  return { username: creds.user, password: creds.password };
}
