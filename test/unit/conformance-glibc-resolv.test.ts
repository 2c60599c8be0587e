/**
 * glibc's own res_init test table (test/fixtures/conformance/glibc-resolv.json,
 * provenance in its `comment`: resolv/tst-resolv-res_init-skeleton.c at the
 * commit named there) run against parseResolvConf, row by row, on what
 * pullprobe models (the file's `adapter` notes): the search list, the used
 * and listed nameservers, ndots/timeout/attempts and the rotate and
 * no-tld-query flags. The host name of each row is passed in, as glibc takes
 * it from gethostname().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseResolvConf, usedNameservers } from '../../src/node-config/resolv-conf.js';

interface Row {
  id: string;
  conf: string;
  expected: string;
  hostname: string;
  unsupported?: string;
}

const table = JSON.parse(readFileSync(new URL('../fixtures/conformance/glibc-resolv.json', import.meta.url), 'utf8')) as {
  comment: string;
  cases: Row[];
};

interface Modelled {
  search: string[];
  used: string[];
  all: string[];
  ndots: number;
  timeout: number;
  attempts: number;
  rotate: boolean;
  noTldQuery: boolean;
}

/** What glibc's print_resp text says about the parts pullprobe models. */
function fromPrintResp(text: string): Modelled {
  const m: Modelled = { search: [], used: [], all: [], ndots: 1, timeout: 5, attempts: 2, rotate: false, noTldQuery: false };
  for (const line of text.split('\n')) {
    let x: RegExpExecArray | null;
    if ((x = /^; search\[\d+\]: (.*)$/.exec(line))) m.search.push(x[1] ?? '');
    else if ((x = /^nameserver (\S+)$/.exec(line))) m.used.push(x[1] ?? '');
    else if ((x = /^; nameserver\[\d+\]: \[(.*)\]:53$/.exec(line))) m.all.push(x[1] ?? '');
    else if (line.startsWith('options ')) {
      for (const opt of line.slice('options '.length).split(' ')) {
        const [key, value] = opt.split(':');
        if (key === 'ndots') m.ndots = Number(value);
        else if (key === 'timeout') m.timeout = Number(value);
        else if (key === 'attempts') m.attempts = Number(value);
        else if (key === 'rotate') m.rotate = true;
        else if (key === 'no-tld-query') m.noTldQuery = true;
      }
    }
  }
  return m;
}

function fromPullprobe(row: Row): Modelled {
  const conf = parseResolvConf(row.conf, { hostname: row.hostname });
  return {
    search: conf.search,
    used: usedNameservers(conf).map((n) => n.address),
    all: conf.nameservers.map((n) => n.address),
    ndots: conf.ndots,
    timeout: conf.timeoutSeconds,
    attempts: conf.attempts,
    rotate: conf.rotate,
    noTldQuery: conf.noTldQuery,
  };
}

// Rows the file itself marks unsupported set LOCALDOMAIN / RES_OPTIONS in the
// environment of the glibc test process; pullprobe reads the node's file, not
// an environment it does not share, so those rows do not apply.
const supported = table.cases.filter((row) => row.unsupported === undefined);

test('the table carries its provenance and its supported rows', () => {
  assert.match(table.comment, /glibc.*04e750e75b73957cf1c791535a3f4319534a52fc.*tst-resolv-res_init-skeleton\.c/);
  assert.equal(supported.length, 21);
  assert.equal(table.cases.length - supported.length, 6);
});

for (const row of supported) {
  test(`glibc res_init: ${row.id} (host name ${row.hostname})`, () => {
    assert.deepEqual(fromPullprobe(row), fromPrintResp(row.expected));
  });
}
