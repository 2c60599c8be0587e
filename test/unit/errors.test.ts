/**
 * The errors module: every class has its own literal PULLPROBE_ code and
 * name, chains `cause`, and is what the modules that throw it export.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as errors from '../../src/shared/errors.js';
import { TrustError } from '../../src/node-config/trust.js';
import { HostsTomlError } from '../../src/node-config/hosts-toml.js';
import { ConfigError } from '../../src/node-config/docker-config.js';
import { RunAbortedError } from '../../src/agent/scheduler.js';
import { TokenUnavailableError } from '../../src/kube/in-cluster.js';
import { UsageError } from '../../src/commands/io.js';
import { DeadlineError } from '../../src/net/deadline.js';
import { KubeApiError, KubeNetworkError, KubeTimeoutError } from '../../src/kube/client.js';
import { isNamedError } from '../support/fuzz.js';

const cause = new Error('low level');
const samples: errors.PullprobeError[] = [
  new errors.UsageError('u', false, { cause }),
  new errors.FileUnreadableError('/f', 'f', { cause }),
  new errors.TrustError('/ca', 'c', { cause }),
  new errors.HostsTomlError('/h', 'k', 'd', { cause }),
  new errors.DockerConfigError('d', { cause }),
  new errors.ReportInputError('r', { cause }),
  new errors.DeadlineError({ cause }),
  new errors.RunAbortedError('stop'),
  new errors.KubeApiError(403, 'Forbidden', null, 'k', { cause }),
  new errors.KubeTimeoutError('t', { cause }),
  new errors.KubeNetworkError('n', { cause }),
  new errors.TokenUnavailableError('/t', cause),
  new errors.CredentialProviderConfigError('/etc/kubernetes/cp.yaml: providers[0].apiVersion: invalid', { cause }),
  new errors.CriError('rpc', 'PullImage', 'unix:///run/x.sock', 'UNKNOWN', 'd', { cause }),
];

test('one class per code: every code used once, each a named error with a PULLPROBE_ code', () => {
  const codes = samples.map((e) => e.code);
  assert.deepEqual([...codes].sort(), Object.values(errors.ERROR_CODES).sort());
  for (const e of samples) {
    assert.ok(isNamedError(e), e.name);
    assert.ok(errors.isPullprobeError(e), e.name);
    assert.equal(e.name, e.constructor.name);
    if (!(e instanceof errors.RunAbortedError)) assert.equal(e.cause, cause, `${e.name} chains cause`);
  }
  assert.ok(!errors.isPullprobeError(Object.assign(new Error('x'), { code: 'PULLPROBE_NOPE' })));
  assert.ok(!errors.isPullprobeError({ code: 'PULLPROBE_USAGE' }), 'not an Error');
});

test('user errors (exit 2 in the CLI) are the usage, file and input kinds only', () => {
  const user = samples
    .filter((e) => errors.isUserError(e))
    .map((e) => e.code)
    .sort();
  assert.deepEqual(user, [
    'PULLPROBE_CREDENTIAL_PROVIDER_CONFIG',
    'PULLPROBE_DOCKER_CONFIG',
    'PULLPROBE_FILE_UNREADABLE',
    'PULLPROBE_HOSTS_TOML',
    'PULLPROBE_REPORT_INPUT',
    'PULLPROBE_TRUST',
    'PULLPROBE_USAGE',
  ]);
});

test('the throwing modules export the same classes', () => {
  assert.equal(TrustError, errors.TrustError);
  assert.equal(HostsTomlError, errors.HostsTomlError);
  assert.equal(ConfigError, errors.DockerConfigError);
  assert.equal(RunAbortedError, errors.RunAbortedError);
  assert.equal(TokenUnavailableError, errors.TokenUnavailableError);
  assert.equal(UsageError, errors.UsageError);
  assert.equal(DeadlineError, errors.DeadlineError);
  assert.equal(KubeApiError, errors.KubeApiError);
  assert.equal(KubeTimeoutError, errors.KubeTimeoutError);
  assert.equal(KubeNetworkError, errors.KubeNetworkError);
});
