// dashboard.mjs - drives the errinj dashboard in Debian's headless Chromium (playwright-core)
// against a running kvnode, as a user would: the page alone, with the kvnode's line protocol
// to make its points fire.
//
//   node dashboard.mjs functional --api HOST:PORT --kv HOST:PORT [--token T] --screenshot FILE
//   node dashboard.mjs load --api HOST:PORT --kv HOST:PORT --rate N --seconds S
//
// functional: enable kv_put_fail from the page, PUT on kvnode, see the event row and the
// timeline mark, see an error in the server's words, disable, see the catalogue follow, save a
// screenshot. With --token, the page must ask for the token, and no request URL it makes may
// contain it. load: N hits a second for S seconds; the page's DOM, kept events and timeline must
// stay bounded; frame times and JS heap are measured. Both print one JSON line of results on
// stdout and exit 0, or print what failed on stderr and exit 1.
import { chromium } from 'playwright-core';
import net from 'node:net';

const [mode, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
const CHROMIUM = process.env.ERRINJ_CHROMIUM || '/usr/bin/chromium';
const DEADLINE = Number(process.env.ERRINJ_TEST_DEADLINE || 20) * 1000;
const UI = `http://${opt.api}/v2/error_injection/ui`;

function fail(msg) {
  throw new Error(msg);
}

/* The kvnode line protocol: one request line, one reply line. */
class KV {
  static connect(addr) {
    const [host, port] = addr.split(':');
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(port), host, () => resolve(new KV(s)));
      s.once('error', reject);
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.buf = '';
    this.waiting = [];
    this.replies = 0;
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.replies++;
        const w = this.waiting.shift();
        if (w) w(line);
      }
    });
  }
  call(line) {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(line + '\n');
    });
  }
  send(lines) {
    this.sock.write(lines.map((l) => l + '\n').join(''));
  }
  close() {
    this.sock.destroy();
  }
}

async function launch() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--enable-precise-memory-info'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    // Refused requests are checked by their responses below, not by the browser's console line.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push('console: ' + m.text());
  });
  // The only refusals the page may meet: 401 before it has the token, and 400s the test provokes.
  page.on('response', (r) => {
    const s = r.status();
    if (s >= 400 && !(s === 401 || s === 400)) {
      problems.push(`${r.request().method()} ${r.url()} answered ${s}`);
    }
  });
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), headers: r.headers() }));
  return { browser, page, problems, requests };
}

async function functional() {
  const { browser, page, problems, requests } = await launch();
  const result = {};
  try {
    await page.goto(UI);
    if (opt.token) {
      // The page itself needs no token; its first API call answers 401 and it asks.
      await page.waitForSelector('#token-dialog[open]', { timeout: DEADLINE });
      await page.fill('#token-input', opt.token);
      await page.click('#token-save');
      result.asked_for_token = true;
    }
    const row = (name) => `#catalogue tr[data-name="${name}"]`;
    await page.waitForSelector(`${row('kv_put_fail')}[data-enabled="false"]`, { timeout: DEADLINE });
    const cells = await page.$$eval(`${row('kv_put_fail')} td`, (tds) => tds.map((t) => t.textContent.replace(/\u200e/g, '')));
    if (cells[1] !== 'exception' || !/store\.c:\d+$/.test(cells[2])) fail('catalogue row of kv_put_fail: ' + cells);
    await page.waitForSelector('#stream-state.live', { timeout: DEADLINE });

    // Enable with a parameter from the form.
    await page.fill('#enable-name', 'kv_put_fail');
    await page.fill('#enable-params', 'reason=dashboard');
    await page.click('#enable-button');
    await page.waitForSelector(`${row('kv_put_fail')}[data-enabled="true"]`, { timeout: DEADLINE });
    const said = await page.textContent('#control-result');
    if (!said.includes('enabled kv_put_fail')) fail('enable result: ' + said);

    // Make kvnode fire: the event row and the timeline mark appear.
    const kv = await KV.connect(opt.kv);
    const reply = await kv.call('PUT dash-key v');
    if (reply !== 'ERR injected') fail('kvnode answered ' + reply);
    await page.waitForSelector('#events tr[data-injection="kv_put_fail"]', { timeout: DEADLINE });
    const ev = await page.$$eval('#events tr[data-injection="kv_put_fail"] td', (tds) => tds.map((t) => t.textContent));
    if (ev[4] !== 'hit' || !ev[9].includes('reason=dashboard')) fail('event row: ' + ev);
    await page.waitForFunction(() => Number(document.getElementById('timeline').dataset.marks) > 0, null,
      { timeout: DEADLINE });
    await page.waitForSelector('#timeline-legend [data-injection="kv_put_fail"]', { timeout: DEADLINE });
    result.event_row = ev.slice(0, 6);

    // The catalogue follows the hit (enters 1).
    await page.waitForFunction(() => {
      const tds = document.querySelectorAll('#catalogue tr[data-name="kv_put_fail"] td');
      return tds.length > 4 && tds[4].textContent === '1';
    }, null, { timeout: DEADLINE });

    // A refused request shows the server's own message.
    await page.fill('#enable-name', 'x'.repeat(300));
    await page.click('#enable-button');
    await page.waitForSelector('#error:not([hidden])', { timeout: DEADLINE });
    const err = await page.textContent('#error');
    if (!err.includes('400') || !err.includes('injection name must be 1 to 255 bytes')) fail('error box: ' + err);
    result.error_shown = err;

    // A second point fires on another shard for the screenshot's timeline, then a handler point
    // is enabled so the catalogue shows its Message button.
    await page.click(`${row('kv_accept')} button`);
    await page.waitForSelector(`${row('kv_accept')}[data-enabled="true"]`, { timeout: DEADLINE });
    const other = await KV.connect(opt.kv);
    await other.call('GET nothing');
    for (let i = 0; i < 12; i++) await kv.call(`PUT k${i} v`);
    await page.click(`${row('kv_accept')} button`);
    await page.waitForSelector(`${row('kv_accept')}[data-enabled="false"]`, { timeout: DEADLINE });
    other.close();

    // Disable from the catalogue row: the catalogue updates.
    await page.click(`${row('kv_put_fail')} button`);
    await page.waitForSelector(`${row('kv_put_fail')}[data-enabled="false"]`, { timeout: DEADLINE });
    if ((await kv.call('PUT after v')) !== 'OK') fail('kv_put_fail still fires after the disable');

    // A fault term and a seed from the form: "2*on" fires twice, then the injection disables
    // itself; the catalogue shows 2 evaluations and the events the action taken.
    await page.waitForSelector('#enable-term:not([disabled])', { timeout: DEADLINE });
    await page.fill('#enable-name', 'kv_put_fail');
    await page.fill('#enable-params', '');
    await page.fill('#enable-term', '2*on');
    await page.fill('#enable-seed', '7');
    await page.click('#enable-button');
    await page.waitForFunction(() => document.getElementById('control-result').textContent.includes('with term 2*on'),
      null, { timeout: DEADLINE });
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await kv.call(`PUT term${i} v`));
    if (replies.join(',') !== 'ERR injected,ERR injected,OK') fail('term 2*on on kvnode: ' + replies);
    await page.waitForFunction(() => {
      const tr = document.querySelector('#catalogue tr[data-name="kv_put_fail"]');
      return tr && tr.dataset.enabled === 'false' && tr.cells[5].textContent === '2' && tr.cells[4].textContent === '2';
    }, null, { timeout: DEADLINE });
    await page.waitForFunction(() => [...document.querySelectorAll('#events tr[data-injection="kv_put_fail"]')]
      .some((tr) => tr.cells[8].textContent === 'on'), null, { timeout: DEADLINE });
    result.term = { replies, evaluations: 2 };
    // A bad term: the server's words, with the offset.
    await page.fill('#enable-term', '3*bogus');
    await page.click('#enable-button');
    await page.waitForFunction(() => document.getElementById('error').textContent.includes('bad term at offset'),
      null, { timeout: DEADLINE });
    result.term_error = await page.textContent('#error');
    if (!result.term_error.includes('400')) fail('bad term error: ' + result.term_error);
    await page.fill('#enable-term', '');
    await page.fill('#enable-seed', '');

    // A handler that parks a PUT: enable it with a parameter, see the waiter, release it with
    // the row's Message button.
    await page.fill('#enable-name', 'kv_put_before_apply');
    await page.fill('#enable-params', 'key=user:42');
    await page.click('#enable-button');
    await page.waitForSelector(`${row('kv_put_before_apply')}[data-enabled="true"]`, { timeout: DEADLINE });
    const parked = kv.call('PUT user:42 held');
    await page.waitForFunction(() => {
      const tr = document.querySelector('#catalogue tr[data-name="kv_put_before_apply"]');
      return tr && tr.cells[6].textContent === '1';
    }, null, { timeout: DEADLINE });
    await page.click(`${row('kv_put_before_apply')} button:text("Message")`);
    if ((await parked) !== 'OK') fail('the parked PUT answered ' + (await parked));
    await page.waitForSelector('#events tr[data-injection="kv_put_before_apply"]', { timeout: DEADLINE });
    const phases = await page.$$eval('#events tr[data-injection="kv_put_before_apply"]',
      (trs) => trs.map((tr) => tr.cells[4].textContent));
    for (const want of ['hit', 'waiting', 'released']) {
      if (!phases.includes(want)) await page.waitForFunction((w) => [...document.querySelectorAll(
        '#events tr[data-injection="kv_put_before_apply"]')].some((tr) => tr.cells[4].textContent === w), want,
      { timeout: DEADLINE });
    }

    // Filters: only handler events; then none of them; then all again.
    await page.selectOption('#filter-type', 'handler');
    const types = await page.$$eval('#events tbody tr[data-seq]', (trs) => [...new Set(trs.map((tr) => tr.cells[3].textContent))]);
    if (types.join() !== 'handler') fail('type filter shows ' + types);
    await page.selectOption('#filter-type', '');

    // Pause: new events do not move the table until Resume.
    await page.click(`${row('kv_put_fail')} button`);
    await page.waitForSelector(`${row('kv_put_fail')}[data-enabled="true"]`, { timeout: DEADLINE });
    await page.click('#pause-button');
    const topBefore = await page.$eval('#events tbody tr[data-seq]', (tr) => tr.dataset.seq);
    if ((await kv.call('PUT paused v')) !== 'ERR injected') fail('kv_put_fail did not fire');
    await page.waitForFunction(() => /paused: [1-9][0-9]* new/.test(document.getElementById('event-count').textContent), null,
      { timeout: DEADLINE }).catch(async (e) => fail('while paused: ' + await page.textContent('#event-count')));
    if ((await page.$eval('#events tbody tr[data-seq]', (tr) => tr.dataset.seq)) !== topBefore) fail('the table moved while paused');
    await page.click('#pause-button');
    await page.waitForFunction((seq) => document.querySelector('#events tbody tr[data-seq]').dataset.seq !== seq, topBefore,
      { timeout: DEADLINE });

    // Disable all: every row of the catalogue is off.
    await page.click('#disable-all');
    await page.waitForFunction(() => [...document.querySelectorAll('#catalogue tr[data-name]')]
      .every((tr) => tr.dataset.enabled === 'false'), null, { timeout: DEADLINE });

    // Coverage: kv_flush was never armed; kv_get_delay, armed now and never reached, joins the
    // second list; kv_put_fail, armed and reached, is in neither.
    await page.click(`${row('kv_get_delay')} button`);
    await page.waitForSelector(`${row('kv_get_delay')}[data-enabled="true"]`, { timeout: DEADLINE });
    await page.click('#coverage-refresh');
    await page.waitForSelector('#never-reached li[data-name="kv_get_delay"]', { timeout: DEADLINE });
    await page.waitForSelector('#never-armed li[data-name="kv_flush"]', { timeout: DEADLINE });
    if (await page.$('#never-armed li[data-name="kv_put_fail"], #never-reached li[data-name="kv_put_fail"]')) {
      fail('kv_put_fail, armed and reached, is listed in coverage');
    }
    result.coverage = {
      never_armed: await page.$$eval('#never-armed li', (l) => l.map((li) => li.dataset.name)),
      never_reached: await page.$$eval('#never-reached li', (l) => l.map((li) => li.dataset.name)),
    };
    await page.fill('#enable-name', 'kv_put_before_apply');
    await page.fill('#enable-params', 'key=user:42');
    kv.close();

    await page.waitForFunction(() => Number(document.getElementById('timeline').dataset.hits) >= 17, null,
      { timeout: DEADLINE });
    if (opt.screenshot) {
      await page.screenshot({ path: opt.screenshot, fullPage: true });
      result.screenshot = opt.screenshot;
    }
    result.first_screen = (await page.textContent('#intro')).trim().replace(/\s+/g, ' ');

    // Every API call carried the token as a header; no URL ever carried it.
    const api = requests.filter((r) => r.url.includes('/v2/error_injection/') && !r.url.includes('/ui'));
    if (api.length === 0) fail('the page made no API request');
    if (opt.token) {
      const leaked = requests.filter((r) => r.url.includes(opt.token) || r.url.includes(encodeURIComponent(opt.token)));
      if (leaked.length) fail('the token appears in a request URL: ' + leaked[0].url);
      const after = api.filter((r) => r.headers.authorization === 'Bearer ' + opt.token);
      if (after.length === 0) fail('no API request carried Authorization: Bearer');
      result.requests_with_bearer = after.length;
    }
    result.requests = requests.length;
    if (problems.length) fail(problems.join('\n'));
  } finally {
    await browser.close();
  }
  return result;
}

/* N hits a second on kvnode for S seconds, the page watching; returns bounds and figures. */
async function load() {
  const rate = Number(opt.rate || 1000);
  const seconds = Number(opt.seconds || 5);
  const { browser, page, problems } = await launch();
  try {
    await page.goto(UI);
    await page.waitForSelector('#stream-state.live', { timeout: DEADLINE });
    await page.waitForSelector('#catalogue tr[data-name="kv_put_fail"]', { timeout: DEADLINE });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const metrics = async () => {
      const m = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
      return { heap: m.JSHeapUsedSize, nodes: m.Nodes };
    };
    const before = await metrics();
    await page.evaluate(() => {
      window.__frames = [];
      let last = performance.now();
      const tick = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    });
    // Baseline: the same page, idle, in the same browser.
    const idleMs = Math.min(5, seconds) * 1000;
    await new Promise((r) => setTimeout(r, idleMs));  // allow-sleep: the idle baseline is a span of time
    const idle = await page.evaluate(() => { const f = window.__frames.slice(1); window.__frames = []; return f; });
    idle.sort((a, b) => a - b);
    await page.fill('#enable-name', 'kv_put_fail');
    await page.click('#enable-button');
    await page.waitForSelector('#catalogue tr[data-name="kv_put_fail"][data-enabled="true"]', { timeout: DEADLINE });
    if (opt.paused === '1') await page.click('#pause-button');

    // Paced by the clock: every 10 ms, as many PUTs as the rate says are due, over 4 connections
    // (each kvnode connection is served in order; keys spread over the shards).
    const conns = await Promise.all([0, 1, 2, 3].map(() => KV.connect(opt.kv)));
    const start = Date.now();
    let sent = 0;
    const samples = [];
    let nextSample = start + 1000;
    while (Date.now() - start < seconds * 1000) {
      const due = Math.floor(((Date.now() - start) / 1000) * rate);
      const lines = [];
      for (; sent < due; sent++) lines.push(`PUT load${sent % 997} v`);
      for (let c = 0; c < conns.length; c++) {
        const part = lines.filter((_, i) => i % conns.length === c);
        if (part.length) conns[c].send(part);
      }
      if (Date.now() >= nextSample) {
        nextSample += Math.max(1000, (seconds * 1000) / 12);
        const s = await page.evaluate(() => window.errinjDashboard.stats());
        samples.push(Object.assign(s, await metrics(), { t: (Date.now() - start) / 1000 }));
      }
      await new Promise((r) => setTimeout(r, 10)); // allow-sleep: paces the load at the rate under test
    }
    const elapsed = (Date.now() - start) / 1000;
    // Every hit reaches the page (the stream is not dropping), then the figures.
    await page.waitForFunction((n) => window.errinjDashboard.stats().received >= n, sent, { timeout: DEADLINE * 3 });
    const replies = conns.reduce((s, c) => s + c.replies, 0);
    conns.forEach((c) => c.close());
    const stats = await page.evaluate(() => window.errinjDashboard.stats());
    const after = await metrics();
    const frames = await page.evaluate(() => window.__frames.slice(1));
    frames.sort((a, b) => a - b);
    const quant = (list, p) => list[Math.min(list.length - 1, Math.floor(p * list.length))];
    const q = (p) => quant(frames, p);
    const rows = await page.$$eval('#events tbody tr:not(.spacer)', (r) => r.length);
    if (problems.length) fail(problems.join('\n'));
    return {
      rate, seconds: elapsed, sent, replies, received: stats.received, achieved_rate: sent / elapsed,
      rows, listed: stats.listed, kept: stats.kept, buckets: stats.buckets, marks: stats.marks,
      frames: frames.length, frame_ms: { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: frames[frames.length - 1] },
      idle_frames: idle.length, idle_frame_ms: { p50: quant(idle, 0.5), p95: quant(idle, 0.95), p99: quant(idle, 0.99),
        max: idle[idle.length - 1] },
      heap_mb: { before: before.heap / 1048576, after: after.heap / 1048576,
        max: Math.max(...samples.map((s) => s.heap)) / 1048576 },
      dom_nodes: { before: before.nodes, after: after.nodes, max: Math.max(...samples.map((s) => s.nodes)) },
      samples: samples.map((s) => ({ t: s.t, rows: s.rows, listed: s.listed, kept: s.kept, buckets: s.buckets, nodes: s.nodes,
        heap_mb: s.heap / 1048576 })),
    };
  } finally {
    await browser.close();
  }
}

try {
  const out = mode === 'functional' ? await functional() : mode === 'load' ? await load() : fail('mode: functional or load');
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
} catch (e) {
  process.stderr.write('dashboard test failed: ' + (e.stack || e.message) + '\n');
  process.exit(1);
}
