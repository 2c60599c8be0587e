/**
 * Loading the kubelet's credential-provider setup: the CredentialProviderConfig file
 * (read through host-root.ts, so a node path seen under a host root resolves as on the
 * node) and the kubelet's start-up checks on the bin dir ("plugin binary directory … did
 * not exist", "plugin binary executable … did not exist"). Paths are as this process sees
 * them (a host root already in front, as for the other node files).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { FileUnreadableError } from '../shared/errors.js';
import {
  CredentialProviderConfigError,
  CredentialProviders,
  parseCredentialProviderConfig,
  type CredentialProviderDeps,
} from './credential-provider.js';
import { cannotRead, readNodeFile, realHostFs, type HostFs } from './host-root.js';

export interface LoadCredentialProvidersOptions {
  configFile: string;
  binDir: string;
  hostRoot?: string;
  hfs?: HostFs;
  /** The user named these files (CLI flags): a config that cannot be read or used throws instead of becoming a problem. */
  strict?: boolean;
  deps?: CredentialProviderDeps;
  /** Is `path` an executable file? (fs by default) */
  isExecutable?: (path: string) => boolean;
  isDirectory?: (path: string) => boolean;
}

export interface LoadedCredentialProviders {
  /** Absent when the config could not be read or used. */
  providers?: CredentialProviders;
  /** What the kubelet would complain about; never a secret. */
  problems: string[];
}

const fsIsExecutable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

const fsIsDirectory = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Read, check and build the providers. Throws only with `strict` (CredentialProviderConfigError, FileUnreadableError). */
export function loadCredentialProviders(o: LoadCredentialProvidersOptions): LoadedCredentialProviders {
  const problems: string[] = [];
  const r = readNodeFile(o.configFile, o.hostRoot, o.hfs ?? realHostFs);
  if (!r.ok) {
    const msg = cannotRead(o.configFile, r).replace(': cannot read', ': cannot read credential provider config');
    if (o.strict) throw new FileUnreadableError(o.configFile, msg);
    return { problems: [`${msg}; probing without credential providers`] };
  }
  let config;
  try {
    config = parseCredentialProviderConfig(r.text, o.configFile);
  } catch (err) {
    if (o.strict || !(err instanceof CredentialProviderConfigError)) throw err;
    return { problems: [`${err.message}; the kubelet would not start with it; probing without credential providers`] };
  }
  const isDir = o.isDirectory ?? fsIsDirectory;
  const isExec = o.isExecutable ?? fsIsExecutable;
  if (!isDir(o.binDir)) problems.push(`plugin binary directory ${o.binDir} did not exist`);
  else
    for (const p of config.providers) {
      const bin = join(o.binDir, p.name);
      if (!isExec(bin)) problems.push(`plugin binary executable ${bin} did not exist`);
    }
  return { providers: new CredentialProviders(config, o.binDir, o.deps), problems };
}
