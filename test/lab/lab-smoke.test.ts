/**
 * Proves the lab itself (not pullprobe): every daemon answers as designed,
 * every fault hits nodeA (subnet A) and spares nodeB, and teardown leaves
 * nothing behind. Uses curl and Node's c-ares resolver inside the node
 * namespaces.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ADDR, Lab, labTestOptions, type ExecResult, type NodeName } from './support/lab.js';
import { isAlive, listLabNamespaces, run } from './support/netns.js';

const INDEX = 'application/vnd.oci.image.index.v1+json';

describe('network lab', labTestOptions(), () => {
  let lab: Lab;
  let upSeconds = 0;

  before(async () => {
    const t0 = performance.now();
    lab = await Lab.up({ containerd: true });
    upSeconds = (performance.now() - t0) / 1000;
  });
  after(async () => {
    await (lab as Lab | undefined)?.down(); // unset when before() failed
  });

  const curl = (node: NodeName, args: string[], timeoutMs = 10_000): Promise<ExecResult> =>
    lab.exec(node, ['curl', '-sS', '--cacert', lab.paths.caFile, '--connect-timeout', '1', '--max-time', '3', ...args], { timeoutMs });
  const status = async (node: NodeName, url: string, extra: string[] = []): Promise<{ rc: number | null; http: string }> => {
    const r = await curl(node, ['-o', '/dev/null', '-w', '%{http_code}', ...extra, url]);
    return { rc: r.code, http: r.stdout.trim() };
  };
  const both = async (url: string, extra: string[] = []): Promise<Record<NodeName, { rc: number | null; http: string }>> => {
    const [a, b] = await Promise.all([status('nodeA', url, extra), status('nodeB', url, extra)]);
    return { nodeA: a, nodeB: b };
  };
  const token = async (node: NodeName, user?: string, password?: string): Promise<string> => {
    const r = await curl(node, [
      ...(user ? ['-u', `${user}:${password}`] : []),
      'https://auth.lab.test/token?service=token.lab.test&scope=repository:lab/probe:pull',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { token: string; access_token: string; expires_in: number };
    assert.equal(body.token, body.access_token);
    assert.ok(body.expires_in > 0);
    return body.token;
  };
  /** c-ares answer codes straight from one nameserver, as seen from a node. */
  const resolve4 = async (node: NodeName, server: string, name: string): Promise<string> => {
    const script = `import { Resolver } from 'node:dns/promises';
      const r = new Resolver({ timeout: 1000, tries: 1 }); r.setServers([process.argv[1]]);
      r.resolve4(process.argv[2]).then((a) => console.log(a.join(',')), (e) => console.log(e.code));`;
    const r = await lab.exec(node, [process.execPath, '--input-type=module', '-e', script, server, name], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };

  test('comes up within the 10 s budget', () => {
    assert.ok(upSeconds < 10, `lab took ${upSeconds.toFixed(1)} s`);
    for (const ns of Object.values(lab.ns)) assert.ok(listLabNamespaces().includes(ns), ns);
  });

  test('every registry answers /v2/ from both subnets', async () => {
    const want: Array<[string, string]> = [
      ['registry.lab.test', '200'],
      ['basic.lab.test', '401'],
      ['token.lab.test', '401'],
    ];
    for (const [host, http] of want) {
      const r = await both(`https://${host}/v2/`);
      assert.deepEqual(r, { nodeA: { rc: 0, http }, nodeB: { rc: 0, http } }, host);
    }
    const basic = await status('nodeA', 'https://basic.lab.test/v2/', ['-u', `${lab.credentials.user}:${lab.credentials.password}`]);
    assert.deepEqual(basic, { rc: 0, http: '200' });
    const wrong = await status('nodeA', 'https://basic.lab.test/v2/', ['-u', `${lab.credentials.user}:wrong`]);
    assert.deepEqual(wrong, { rc: 0, http: '401' });
  });

  test('certificate hosts fail TLS verification (curl rc 60)', async () => {
    for (const host of ['expired.lab.test', 'wronghost.lab.test', 'untrusted.lab.test']) {
      assert.equal((await status('nodeA', `https://${host}/v2/`)).rc, 60, host);
    }
    // The untrusted host is fine once its own CA is trusted: only the CA is wrong.
    const r = await lab.exec('nodeA', [
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--cacert',
      lab.paths.untrustedCaFile,
      'https://untrusted.lab.test/v2/',
    ]);
    assert.equal(r.stdout, '200');
  });

  test('token flow end to end, and its refusals', async () => {
    const good = await token('nodeA', lab.credentials.user, lab.credentials.password);
    const url = 'https://token.lab.test/v2/lab/probe/manifests/v1';
    const head = await curl('nodeA', ['-I', '-H', `Authorization: Bearer ${good}`, '-H', `Accept: ${INDEX}`, url]);
    assert.equal(head.code, 0, head.stderr);
    assert.match(head.stdout, /^HTTP\/\S+ 200/);
    assert.ok(head.stdout.toLowerCase().includes(`docker-content-digest: ${lab.images[0]?.digest}`));

    const challenge = await curl('nodeA', ['-I', url]);
    assert.match(
      challenge.stdout,
      /www-authenticate: Bearer realm="https:\/\/auth\.lab\.test\/token",service="token\.lab\.test",scope="repository:lab\/probe:pull"/i,
    );

    for (const t of [await token('nodeB'), await token('nodeB', lab.credentials.nopullUser, lab.credentials.nopullPassword)]) {
      const denied = await curl('nodeB', ['-I', '-H', `Authorization: Bearer ${t}`, '-H', `Accept: ${INDEX}`, url]);
      assert.match(denied.stdout, /^HTTP\/\S+ 401/);
      assert.match(denied.stdout, /error="insufficient_scope"/);
    }
    const wrong = await status('nodeA', 'https://auth.lab.test/token?service=token.lab.test&scope=repository:lab/probe:pull', [
      '-u',
      `${lab.credentials.user}:wrong`,
    ]);
    assert.deepEqual(wrong, { rc: 0, http: '401' });
    const form =
      `grant_type=password&username=${lab.credentials.user}&password=${lab.credentials.password}` +
      '&service=token.lab.test&scope=repository:lab/probe:pull&client_id=containerd-client';
    assert.deepEqual(await status('nodeB', 'https://auth.lab.test/token', ['-d', form]), { rc: 0, http: '200' });
  });

  test('the OCI index is served with the index Accept header only', async () => {
    const idx = await curl('nodeB', ['-H', `Accept: ${INDEX}`, 'https://registry.lab.test/v2/lab/probe/manifests/v1']);
    const doc = JSON.parse(idx.stdout) as { mediaType: string; manifests: Array<{ platform: { os: string; architecture: string } }> };
    assert.equal(doc.mediaType, INDEX);
    assert.deepEqual(
      doc.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`),
      ['linux/amd64', 'linux/arm64'],
    );
    const only = await curl('nodeB', [
      '-H',
      `Accept: ${INDEX}`,
      'https://basic.lab.test/v2/lab/amd64only/manifests/v1',
      '-u',
      `${lab.credentials.user}:${lab.credentials.password}`,
    ]);
    assert.deepEqual(
      (JSON.parse(only.stdout) as typeof doc).manifests.map((m) => m.platform.architecture),
      ['s390x'],
    );
    assert.deepEqual(await status('nodeB', 'https://registry.lab.test/v2/lab/probe/manifests/v1', ['-I']), { rc: 0, http: '404' });
    assert.deepEqual(await status('nodeB', 'https://registry.lab.test/v2/lab/nope/manifests/v1', ['-I', '-H', `Accept: ${INDEX}`]), {
      rc: 0,
      http: '404',
    });
  });

  test('DNS names give each answer code', async () => {
    assert.equal((await status('nodeA', 'https://nxdomain.lab.test/v2/')).rc, 6);
    const codes = await Promise.all(
      ['registry.lab.test', 'nxdomain.lab.test', 'servfail.lab.test', 'refused.lab.test', 'timeout.lab.test'].map((n) =>
        resolve4('nodeA', ADDR.dnsGood, n),
      ),
    );
    assert.deepEqual(codes, [ADDR.registry, 'ENOTFOUND', 'ESERVFAIL', 'EREFUSED', 'ETIMEOUT']);
    assert.equal(await resolve4('nodeB', ADDR.dnsGood2, 'token.lab.test'), ADDR.token);
    assert.equal(await resolve4('nodeB', ADDR.dnsServfail, 'registry.lab.test'), 'ESERVFAIL');
    assert.equal(await resolve4('nodeB', ADDR.dnsDead, 'registry.lab.test'), 'ECONNREFUSED');
  });

  test('registry faults hit subnet A only', async () => {
    const url = 'https://registry.lab.test/v2/';
    const cases: Array<[Parameters<Lab['fault']>[0], number]> = [
      ['reject-443', 7],
      ['drop-443', 28],
      ['unreach-443', 7],
    ];
    for (const [fault, rc] of cases) {
      lab.fault(fault);
      try {
        const r = await both(url);
        assert.equal(r.nodeA.rc, rc, fault);
        assert.deepEqual(r.nodeB, { rc: 0, http: '200' }, fault);
        assert.deepEqual(await status('nodeA', 'https://auth.lab.test/token'), { rc: 0, http: '200' }, `${fault} spares auth`);
      } finally {
        lab.clear();
      }
      assert.deepEqual(await status('nodeA', url), { rc: 0, http: '200' }, `${fault} cleared`);
    }
    lab.fault('reject-443', { host: 'basic.lab.test' });
    try {
      assert.equal((await status('nodeA', 'https://basic.lab.test/v2/')).rc, 7);
      assert.equal((await status('nodeA', url)).rc, 0);
    } finally {
      lab.clear();
    }
  });

  test('token-service faults hit the token service only', async () => {
    const url = 'https://auth.lab.test/token';
    for (const [fault, rc] of [
      ['token-reject-443', 7],
      ['token-drop-443', 28],
      ['token-unreach-443', 7],
    ] as const) {
      lab.fault(fault);
      try {
        const r = await both(url);
        assert.equal(r.nodeA.rc, rc, fault);
        assert.deepEqual(r.nodeB, { rc: 0, http: '200' }, fault);
        assert.equal((await status('nodeA', 'https://token.lab.test/v2/')).http, '401', `${fault} spares the registry`);
      } finally {
        lab.clear();
      }
    }
    // Token-service modes apply to the faulted subnet only; the other one still gets tokens.
    lab.fault('token-hang');
    try {
      assert.equal((await status('nodeA', url)).rc, 28);
      assert.deepEqual(await status('nodeB', url), { rc: 0, http: '200' });
    } finally {
      lab.clear();
    }
    lab.fault('token-error');
    try {
      assert.equal((await status('nodeA', url)).http, '500');
      assert.deepEqual(await status('nodeB', url), { rc: 0, http: '200' });
    } finally {
      lab.clear();
    }
  });

  test('dns-drop silences the first nameserver for subnet A only', async () => {
    lab.fault('dns-drop');
    try {
      assert.equal(await resolve4('nodeA', ADDR.dnsGood, 'registry.lab.test'), 'ETIMEOUT');
      assert.equal(await resolve4('nodeA', ADDR.dnsGood2, 'registry.lab.test'), ADDR.registry);
      assert.equal(await resolve4('nodeB', ADDR.dnsGood, 'registry.lab.test'), ADDR.registry);
      assert.deepEqual(await status('nodeA', 'https://registry.lab.test/v2/', ['--connect-timeout', '5', '--max-time', '6']), {
        rc: 0,
        http: '200',
      });
    } finally {
      lab.clear();
    }
  });

  test('resolv.conf is per node and rewritten in place', async () => {
    const before = statSync(lab.paths.resolvConf.nodeA).ino;
    lab.writeResolvConf('nodeA', 'servfail');
    try {
      assert.equal(statSync(lab.paths.resolvConf.nodeA).ino, before);
      const r = await both('https://registry.lab.test/v2/');
      assert.equal(r.nodeA.rc, 6);
      assert.deepEqual(r.nodeB, { rc: 0, http: '200' });
    } finally {
      lab.clear();
    }
    assert.deepEqual(await status('nodeA', 'https://registry.lab.test/v2/'), { rc: 0, http: '200' });
  });

  test('containerd runs in each node and pulls through certs.d', async () => {
    const pull = (node: NodeName, ref: string): Promise<ExecResult> => {
      const c = lab.paths.containerd?.[node];
      assert.ok(c, 'containerd paths');
      return lab.exec(node, ['ctr', '--address', c.socket, 'images', 'pull', '--snapshotter', 'native', '--hosts-dir', c.configPath, ref], {
        timeoutMs: 20_000,
      });
    };
    const ok = await pull('nodeA', 'registry.lab.test/lab/probe:v1');
    assert.equal(ok.code, 0, ok.stderr);
    lab.fault('reject-443');
    try {
      const [a, b] = await Promise.all([
        pull('nodeA', 'registry.lab.test/lab/single:v1'),
        pull('nodeB', 'registry.lab.test/lab/single:v1'),
      ]);
      assert.notEqual(a.code, 0);
      assert.match(a.stderr, /connection refused/);
      assert.equal(b.code, 0, b.stderr);
    } finally {
      lab.clear();
    }
  });

  test('nothing leaves the lab: no route out of a node', async () => {
    const r = await lab.exec('nodeA', ['ip', 'route', 'get', '192.0.2.1'], { bindEtc: false });
    // The route points at the router, which has no route anywhere outside 10.231/16.
    assert.match(r.stdout, /via 10\.231\.1\.1/);
    const out = await lab.exec('nodeA', ['curl', '-sS', '--connect-timeout', '1', 'http://192.0.2.1/'], { bindEtc: false });
    assert.equal(out.code, 7);
    assert.equal(run('ip', ['-n', lab.ns.router, 'route', 'show', 'default']).trim(), '');
  });

  test('down removes namespaces, processes and the run dir', async () => {
    const pids = lab.pids();
    assert.ok(pids.length >= 10);
    await lab.down();
    assert.deepEqual(
      listLabNamespaces().filter((n) => n.includes(lab.run)),
      [],
    );
    assert.deepEqual(pids.filter(isAlive), []);
    assert.equal(existsSync(lab.dir), false);
  });
});
