/**
 * The status page in a real browser: Debian's chromium, headless, driven by
 * playwright-core (which never downloads a browser of its own), loading `/`
 * from a real agent server on 127.0.0.1. Screenshots land in test-artifacts/.
 * Runs in every unit run, CI included: without chromium it fails and says
 * how to install it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { createServer, type AgentServer } from '../../src/agent/server.js';
import { reasonInfo } from '../../src/diagnosis/catalog.js';
import { silentLog } from '../../src/model/types.js';
import { StatusStore } from '../../src/agent/status-store.js';
import { manyStore, SCENE, sceneStore } from './status-page-fixture.js';

const CHROMIUM = process.env['PULLPROBE_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

let context: BrowserContext | undefined;
let profile: string | undefined;
const servers: AgentServer[] = [];

async function serve(store: StatusStore): Promise<string> {
  const server = createServer({
    metrics: new AgentMetrics({ defaultMetrics: false }),
    store,
    log: silentLog,
    allowed: () => [],
    effectiveConfig: () => ({}),
    ready: () => true,
    probeNow: () => Promise.reject(new Error('no probes in this test')),
  });
  servers.push(server);
  const { port } = await server.listen('127.0.0.1', 0);
  return `http://127.0.0.1:${port}/`;
}

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `chromium not found at ${CHROMIUM}: this test needs Debian's chromium package ` +
      '(apt-get install -y --no-install-recommends chromium; .ci/run installs it), or PULLPROBE_CHROMIUM=/path/to/chromium',
  );
  profile = mkdtempSync(join(tmpdir(), 'pullprobe-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
  // Nothing but the agent on loopback: any other request is refused and remembered.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    return url.hostname === '127.0.0.1' ? route.continue() : route.abort('blockedbyclient');
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await context?.close();
  for (const s of servers) await s.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/**
 * The little of the DOM the page functions below use. They run inside
 * chromium, not in Node, so the project keeps its Node-only type library.
 */
interface El {
  tagName: string;
  className: string;
  clientWidth: number;
  scrollWidth: number;
  textContent: string | null;
  innerText: string;
  dataset: Record<string, string | undefined>;
  classList: ArrayLike<string>;
  getAttribute(name: string): string | null;
}
interface Doc {
  querySelectorAll(selector: string): ArrayLike<El>;
  querySelector(selector: string): El | null;
  documentElement: El & { outerHTML: string };
  body: El;
  scripts: ArrayLike<El>;
}
interface Win {
  document: Doc;
  innerWidth: number;
}

interface Layout {
  scrollWidth: number;
  innerWidth: number;
  /** Boxes whose content is wider than they are (clipped rather than scrolled). */
  clipped: string[];
}

async function layout(page: Page): Promise<Layout> {
  return page.evaluate(() => {
    const { document, innerWidth } = globalThis as unknown as Win;
    const clipped: string[] = [];
    for (const el of Array.from(document.querySelectorAll('main *'))) {
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
        clipped.push(`${el.tagName.toLowerCase()}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth, clipped };
  });
}

async function open(url: string, width: number, scheme: 'light' | 'dark' = 'light'): Promise<Page> {
  assert.ok(context, 'the browser did not start');
  const page = await context.newPage();
  await page.setViewportSize({ width, height: width < 600 ? 844 : 900 });
  await page.emulateMedia({ colorScheme: scheme });
  const res = await page.goto(url, { waitUntil: 'load' });
  assert.equal(res?.status(), 200);
  return page;
}

function assertFits(l: Layout, what: string): void {
  assert.ok(l.scrollWidth <= l.innerWidth, `${what}: page is ${l.scrollWidth}px wide in a ${l.innerWidth}px window`);
  assert.deepEqual(l.clipped, [], `${what}: content wider than its box`);
}

test('the status page of a node with failures: fits 1280 and 390 px, failing first, one fix per registry', async () => {
  const { store } = sceneStore();
  const url = await serve(store);
  for (const width of [1280, 390]) {
    for (const scheme of ['light', 'dark'] as const) {
      const page = await open(url, width, scheme);
      try {
        assertFits(await layout(page), `${width}px ${scheme}`);
        const suffix = scheme === 'light' ? '' : '-dark';
        await page.screenshot({ path: join(ARTIFACTS, `status-page-${width}${suffix}.png`), fullPage: true });
      } finally {
        await page.close();
      }
    }
  }

  const page = await open(url, 1280);
  try {
    const dom = await page.evaluate(() => {
      const { document } = globalThis as unknown as Win;
      return {
        rows: Array.from(document.querySelectorAll('li.t')).map((li) => li.dataset['state'] ?? ''),
        registries: Array.from(document.querySelectorAll('.reg')).map((s) => [s.dataset['registry'] ?? '', s.classList[1] ?? '']),
        text: document.body.innerText,
        html: document.documentElement.outerHTML,
        headline: document.querySelector('#summary .headline')?.textContent ?? '',
        chipTitle: document.querySelector(`section[data-registry="ghcr.io"] li.t.failing .chip.failing`)?.getAttribute('title') ?? '',
        changes: Array.from(document.querySelectorAll('#changes li')).map((li) => li.innerText.replace(/\s+/g, ' ')),
        scripts: document.scripts.length,
      };
    });
    const firstOther = dom.rows.findIndex((s) => s !== 'failing');
    assert.equal(firstOther, 4, `four failing rows first, then the rest: ${dom.rows.join(' ')}`);
    assert.ok(
      dom.rows.slice(firstOther).every((s) => s !== 'failing'),
      'no failing row after a healthy one',
    );
    assert.deepEqual(
      dom.registries.slice(0, 2).map(([, s]) => s),
      ['failing', 'failing'],
    );
    assert.deepEqual(
      dom.registries
        .slice(0, 2)
        .map(([r]) => r)
        .sort(),
      [SCENE.ghcr, SCENE.harbor].sort(),
    );
    assert.deepEqual(dom.registries[2], [SCENE.ecr, 'degraded'], 'the degraded registry next');

    for (const reason of ['dns_nxdomain', 'tls_expired'] as const) {
      const fix = reasonInfo(reason).hint;
      assert.equal(dom.text.split(fix).length - 1, 1, `the fix for ${reason} is shown once, for two failing targets`);
    }
    assert.match(dom.headline, /2 registries failing/);
    assert.ok(!dom.html.includes('\u001b') && !dom.text.includes('\u001b'), 'no raw ESC character');
    assert.ok(dom.text.includes('no such host <img src=x onerror=alert(1)>'), 'terminal colours dropped, markup shown as text');
    assert.equal(dom.scripts, 0, 'registry text did not become markup or script');
    assert.match(dom.chipTitle, /^tls: failed in 0\.038s/);

    const changed = dom.changes.filter((c) => c.includes(SCENE.changed));
    assert.equal(changed[0]?.includes('✗ tcp/tcp_refused → ✗ tls/tls_expired'), true, `latest change of ${SCENE.changed}: ${changed[0]}`);
    assert.ok(
      dom.changes.some((c) => c.includes(SCENE.hub) && c.includes('✗ manifest/rate_limited → ✓ ok')),
      dom.changes.join('\n'),
    );
    assert.ok(!/cleared/i.test(dom.text));
  } finally {
    await page.close();
  }
});

test('the status page with 0 and with 200 targets fits 1280 and 390 px', async () => {
  const empty = await serve(new StatusStore());
  const many = await serve(manyStore(200));
  for (const [name, url] of [
    ['empty', empty],
    ['200', many],
  ] as const) {
    for (const width of [1280, 390]) {
      const page = await open(url, width);
      try {
        assertFits(await layout(page), `${name} at ${width}px`);
        if (name === 'empty') assert.match(await page.innerText('#summary'), /No targets configured/);
        else {
          assert.equal(await page.locator('li.t').count(), 200);
          assert.equal(await page.locator('li.t.failing:visible').count(), 6, 'every failing row in view');
          assert.equal(
            await page.locator('li.t.ok:visible').count(),
            24,
            'healthy registries folded: only those with a failure show their ok rows',
          );
        }
        if (width === 390) await page.screenshot({ path: join(ARTIFACTS, `status-page-${name}-390.png`), fullPage: name === 'empty' });
      } finally {
        await page.close();
      }
    }
  }
});
