// tests/web/dashboard.test.mjs - the dashboard in a real browser: Debian's headless chromium
// driven by playwright-core (no browser download). Loads the dashboard of a running server,
// searches a SKU, and checks that the page shows, for every location, the quantities the CLI
// printed for the same SKU (--json), and that the other panels filled in. Saves a screenshot.
//
//   node dashboard.test.mjs URL SKU CLI_JSON_FILE OUT_DIR
//
// Exit 0 when everything matches; 1 with the differences otherwise.
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, sku, cliFile, outDir] = process.argv.slice(2);
if (!url || !sku || !cliFile || !outDir) {
  console.error('usage: node dashboard.test.mjs URL SKU CLI_JSON_FILE OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const QTY = ['on_hand', 'available', 'committed', 'held', 'unsellable', 'safety_stock', 'incoming',
             'in_transit'];
const cli = JSON.parse(readFileSync(cliFile, 'utf8'));
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('requestfailed', r => errors.push('request failed: ' + r.url()));
  // Nothing but the node itself: no CDN, no other host.
  const foreign = [];
  page.on('request', r => { if (!r.url().startsWith(url)) foreign.push(r.url()); });

  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#node .role', { timeout: 15000 });
  await page.fill('#sku-input', sku);
  await page.click('#sku-form button');
  await page.waitForSelector('#sku-table:not(.hidden) tbody tr[data-loc]', { timeout: 15000 });

  const shown = await page.$$eval('#sku-table tbody tr[data-loc]', rows => rows.map(tr => {
    const q = {};
    for (const td of tr.querySelectorAll('td[data-q]')) q[td.dataset.q] = Number(td.textContent);
    return { loc: tr.dataset.loc, q };
  }));
  const total = Number(await page.textContent('#sku-available'));
  check(total === cli.available, `total available: page ${total}, CLI ${cli.available}`);
  check(shown.length === cli.records.length,
        `locations: page ${shown.length}, CLI ${cli.records.length}`);
  for (const rec of cli.records) {
    const row = shown.find(s => s.loc === rec.loc);
    check(row !== undefined, `location ${rec.loc} missing from the page`);
    if (!row) continue;
    for (const q of QTY)
      check(row.q[q] === rec[q], `${rec.loc} ${q}: page ${row.q[q]}, CLI ${rec[q]}`);
  }

  // The other panels: filled from the same node (rows or their "none" line), and the chart drew.
  await page.waitForSelector('#low-table tbody tr', { timeout: 15000 });
  await page.waitForSelector('#holds-table tbody tr', { timeout: 15000 });
  // The order's event comes after the import's thousands: the page reads them page by page.
  await page.waitForSelector('#orders-table tbody tr[data-order="WEB-1"]', { timeout: 20000 })
      .catch(() => {});
  await page.waitForFunction(() => document.querySelector('#chart-now').textContent.length > 0,
                             null, { timeout: 15000 });
  const role = await page.textContent('#node .role');
  check(role === 'leader', `role: ${role}`);
  const holds = await page.$$eval('#holds-table tbody tr[data-hold]', r => r.length);
  check(holds >= 1, 'the open hold of the scenario is not listed');
  const orders = await page.$$eval('#orders-table tbody tr[data-order]', r => r.map(x => x.dataset.order));
  check(orders.includes('WEB-1'), `order WEB-1 not among the recent orders: ${orders}`);
  check(errors.length === 0, 'page errors: ' + errors.join('; '));
  check(foreign.length === 0, 'requests to other hosts: ' + foreign.join(', '));

  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });
  console.log(`dashboard: ${shown.length} locations of ${sku} as the CLI shows them; ` +
              `screenshot ${join(outDir, 'dashboard.png')}`);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error('dashboard: FAIL\n  ' + failures.join('\n  '));
  process.exit(1);
}
