/*
 * app.js - the errinj dashboard: catalogue, controls, live events, timeline and coverage of the
 * server that serves this page, over its REST API and its event stream.
 *
 * The token (when the server has one) is asked for when a call answers 401, kept in this tab's
 * sessionStorage and sent as "Authorization: Bearer" on every call, the stream included: the
 * stream is read with fetch() and a small SSE parser, since EventSource cannot send headers.
 * Memory stays bounded however many events arrive: the table has only the rows its box shows,
 * the page keeps the last KEEP_EVENTS events, and the timeline keeps counts per time bucket.
 */
'use strict';
(() => {
  const API = '/v2/error_injection';
  const KEEP_EVENTS = 1000;    // events kept to re-filter the table
  const REPLAY = 300;          // events of the past shown when the page opens
  const BUCKET_MS = 250;       // timeline resolution
  const KEEP_MS = 300000;      // timeline history (the widest window)
  const MAX_KEYS = 256;        // shard x injection series per bucket; more go to "(other)"
  const POLL_MS = 2000;
  const TOKEN_KEY = 'errinj.token';

  const $ = (id) => document.getElementById(id);
  /* Left-to-right marks keep a path's slashes in place inside a right-to-left (cut at the start) cell. */
  const ltr = (text) => (text ? '\u200e' + text + '\u200e' : '');
  /* A file:line cell: long paths are cut at their start (CSS), the whole path is its title. */
  const whereCell = (file, line) => {
    const td = document.createElement('td');
    td.className = 'where mono muted';
    if (file) {
      td.textContent = ltr(`${file}:${line}`);
      td.title = `${file}:${line}`;
    }
    return td;
  };
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  /* ---- the API, with the token in a header ---------------------------------------------- */

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let tokenAsk = null;

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function authHeaders(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  /* Opens the token dialog once for every caller that got a 401; true when a token was given. */
  function askToken(why) {
    if (tokenAsk) return tokenAsk;
    const dialog = $('token-dialog');
    $('token-why').textContent = why ||
      'This server wants Authorization: Bearer. The token stays in this tab (sessionStorage) and is sent as a header, never in a URL.';
    $('token-input').value = token;
    tokenAsk = new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        tokenAsk = null;
        if (dialog.returnValue === 'save' && $('token-input').value !== '') {
          token = $('token-input').value;
          sessionStorage.setItem(TOKEN_KEY, token);
          resolve(true);
        } else {
          if (dialog.returnValue === 'forget') {
            token = '';
            sessionStorage.removeItem(TOKEN_KEY);
          }
          resolve(false);
        }
      }, { once: true });
    });
    dialog.showModal();
    $('token-input').focus();
    return tokenAsk;
  }

  async function errorMessage(resp) {
    const text = await resp.text();
    try {
      const j = JSON.parse(text);
      if (j && typeof j.message === 'string') return j.message;
    } catch (e) { /* not JSON: the text as it came */ }
    return text || resp.statusText;
  }

  /* One REST call; asks for the token on 401 and tries again. Resolves to the Response. */
  async function call(method, path, body) {
    for (;;) {
      const init = { method, headers: authHeaders(), cache: 'no-store' };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
        init.headers['Content-Type'] = 'application/json';
      }
      const resp = await fetch(API + path, init);
      if (resp.status === 401) {
        const why = await errorMessage(resp);
        if (await askToken('The server answered 401: ' + why + '. Give its token (kept in this tab only).')) continue;
        throw new ApiError(401, why);
      }
      if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
      return resp;
    }
  }

  async function getJSON(path) {
    return (await call('GET', path)).json();
  }

  function showError(what, err) {
    const box = $('error');
    box.textContent = err instanceof ApiError ? `${what}: ${err.status} ${err.message}` : `${what}: ${err.message || err}`;
    box.hidden = false;
  }
  $('error').addEventListener('click', () => { $('error').hidden = true; });

  /* ---- status and catalogue ------------------------------------------------------------- */

  const state = { points: [], enabled: new Set(), coverage: null, hasCoverage: true, status: null, instance: null };

  async function loadStatus() {
    const st = await getJSON('/status');
    state.status = st;
    const parts = [location.host, 'errinj ' + st.version, 'seq ' + st.seq, st.subscribers + ' stream' +
      (st.subscribers === 1 ? '' : 's'), st.shards + ' shard' + (st.shards === 1 ? '' : 's')];
    if (st.dropped) parts.push(st.dropped + ' dropped');
    $('node').textContent = parts.join(' · ');
    const terms = st.seed !== undefined;
    for (const id of ['enable-term', 'enable-seed']) {
      $(id).disabled = !terms;
      if (!terms) $(id).title = 'this server does not take fault terms';
    }
    return st;
  }

  async function loadCatalogue() {
    const [points, enabled] = await Promise.all([getJSON('/points'), getJSON('/injection')]);
    state.points = points;
    state.enabled = new Set(enabled);
    renderCatalogue();
  }

  function evaluationsOf(p) {
    if (p.evaluations !== undefined) return p.evaluations;
    const c = state.coverage && state.coverage.get(p.name);
    return c && c.evaluations !== undefined ? c.evaluations : null;
  }

  /* Catalogue rows plus enabled run-time names (no compiled point). */
  function catalogueRows() {
    const rows = state.points.map((p) => Object.assign({}, p, { enabled: p.enabled || state.enabled.has(p.name) }));
    const known = new Set(rows.map((p) => p.name));
    for (const name of state.enabled) {
      if (!known.has(name)) rows.push({ name, type: null, file: null, line: null, enabled: true, enters: null, waiters: null });
    }
    rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : (a.file || '') < (b.file || '') ? -1 : 1));
    return rows;
  }

  function renderCatalogue() {
    const filter = $('catalogue-filter').value.trim().toLowerCase();
    const onlyEnabled = $('catalogue-enabled-only').checked;
    const tbody = $('catalogue').tBodies[0];
    const frag = document.createDocumentFragment();
    const names = new Set();
    let shown = 0;
    for (const p of catalogueRows()) {
      names.add(p.name);
      const where = p.file ? `${p.file}:${p.line}` : '';
      if (onlyEnabled && !p.enabled) continue;
      if (filter && !(p.name.toLowerCase().includes(filter) || (p.type || '').includes(filter) ||
                      where.toLowerCase().includes(filter))) continue;
      shown++;
      const tr = el('tr');
      tr.dataset.name = p.name;
      tr.dataset.enabled = String(p.enabled);
      const name = el('td', 'mono');
      const pick = el('a', null, p.name);
      pick.href = '#enable-form';
      pick.title = 'put this name in the enable form';
      pick.addEventListener('click', (e) => { e.preventDefault(); $('enable-name').value = p.name; $('enable-name').focus(); });
      name.append(pick);
      const en = el('td');
      en.append(el('span', p.enabled ? 'badge on' : 'badge', p.enabled ? 'on' : 'off'));
      const ev = evaluationsOf(p);
      tr.append(name, el('td', 'type', p.type || 'run-time'), whereCell(p.file, p.line), en,
        el('td', 'num', p.enters === null ? '' : String(p.enters)), el('td', 'num', ev === null ? '–' : String(ev)),
        el('td', 'num', p.waiters === null ? '' : String(p.waiters)));
      const act = el('td');
      const toggle = el('button', 'small', p.enabled ? 'Disable' : 'Enable');
      toggle.type = 'button';
      toggle.title = p.enabled ? 'disable it' : 'enable it as compiled (use the form for one-shot, term, seed, parameters)';
      toggle.addEventListener('click', () => (p.enabled ? disable(p.name) : enable(p.name, {})));
      act.append(toggle);
      if (p.enabled && p.type === 'handler') {
        const msg = el('button', 'small', 'Message');
        msg.type = 'button';
        msg.addEventListener('click', () => message(p.name));
        act.append(' ', msg);
      }
      tr.append(act);
      frag.append(tr);
    }
    tbody.replaceChildren(frag);
    $('catalogue-empty').hidden = shown > 0;
    const list = $('point-names');
    if (list.children.length !== names.size) {
      list.replaceChildren(...[...names].map((n) => { const o = el('option'); o.value = n; return o; }));
    }
  }

  $('catalogue-filter').addEventListener('input', renderCatalogue);
  $('catalogue-enabled-only').addEventListener('change', renderCatalogue);

  /* ---- controls ------------------------------------------------------------------------- */

  function result(text, bad) {
    const r = $('control-result');
    r.textContent = text;
    r.className = bad ? 'bad' : 'muted';
  }

  function parseParams(text) {
    text = text.trim();
    if (text === '') return undefined;
    if (text.startsWith('{')) {
      let v;
      try { v = JSON.parse(text); } catch (e) { throw new Error('parameters: ' + e.message); }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('parameters: not a JSON object');
      return v;
    }
    const out = {};
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const eq = line.indexOf('=');
      if (eq <= 0) throw new Error(`parameters: "${line.trim()}" is not key=value`);
      out[line.slice(0, eq).trim()] = line.slice(eq + 1);
    }
    return out;
  }

  const injectionPath = (name) => '/injection/' + encodeURIComponent(name);

  async function act(what, fn) {
    try {
      await fn();
      $('error').hidden = true;
    } catch (err) {
      result(err instanceof ApiError ? `${err.status} ${err.message}` : err.message, true);
      showError(what, err);
    }
    refreshSoon(0);
  }

  function enable(name, opts) {
    return act('enable ' + name, async () => {
      const q = new URLSearchParams();
      if (opts.oneShot) q.set('one_shot', 'true');
      if (opts.term) q.set('term', opts.term);
      if (opts.seed) q.set('seed', opts.seed);
      const query = q.toString();
      const resp = await call('POST', injectionPath(name) + (query ? '?' + query : ''), opts.params);
      let text = `enabled ${name}` + (opts.oneShot ? ' (one-shot)' : '') + (opts.term ? ` with term ${opts.term}` : '');
      const seq = resp.headers.get('Errinj-Seq');
      if (seq) text += `, after seq ${seq}`;
      const warning = resp.headers.get('Errinj-Warning');
      if (warning) text += ` (warning: ${warning})`;
      result(text, false);
    });
  }

  function disable(name) {
    return act('disable ' + name, async () => {
      await call('DELETE', injectionPath(name));
      result(`disabled ${name}`, false);
    });
  }

  function message(name) {
    return act('message ' + name, async () => {
      await call('POST', injectionPath(name) + '/message');
      result(`message sent to ${name}`, false);
    });
  }

  function formName() {
    const name = $('enable-name').value;
    if (name === '') result('give an injection name', true);
    return name;
  }

  $('enable-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = formName();
    if (!name) return;
    let params;
    try { params = parseParams($('enable-params').value); } catch (err) { result(err.message, true); return; }
    enable(name, { oneShot: $('enable-one-shot').checked, term: $('enable-term').value.trim(),
      seed: $('enable-seed').value.trim(), params });
  });
  $('disable-button').addEventListener('click', () => { const n = formName(); if (n) disable(n); });
  $('message-button').addEventListener('click', () => { const n = formName(); if (n) message(n); });
  $('disable-all').addEventListener('click', () => act('disable all', async () => {
    await call('DELETE', '/injection');
    result('disabled every injection', false);
  }));
  $('token-button').addEventListener('click', async () => {
    if (await askToken()) { refreshSoon(0); restartStream(); }
  });

  /* ---- coverage --------------------------------------------------------------------------- */

  async function loadCoverage() {
    if (!state.hasCoverage) return;
    let list;
    try {
      list = await getJSON('/coverage');
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        state.hasCoverage = false;
        $('coverage-note').textContent = 'This server has no coverage route (GET /v2/error_injection/coverage).';
        return;
      }
      throw err;
    }
    state.coverage = new Map(list.map((c) => [c.name, c]));
    const reached = (c) => (c.evaluations !== undefined && c.evaluations !== null ? c.evaluations : c.enters) > 0;
    const never = list.filter((c) => c.file !== null && !c.armed);
    const unreached = list.filter((c) => c.armed > 0 && !reached(c));
    const fill = (ul, items, label) => {
      ul.replaceChildren(...items.map((c) => {
        const li = el('li');
        li.dataset.name = c.name;
        li.append(el('span', 'mono', c.name), ' ', el('span', 'muted', label(c)));
        return li;
      }));
    };
    fill($('never-armed'), never, (c) => `${c.type} ${c.file}:${c.line}`);
    fill($('never-reached'), unreached, (c) => (c.file ? `${c.file}:${c.line}, ` : 'run-time name, ') +
      `armed ${c.armed}×`);
    $('never-armed-count').textContent = `(${never.length} of ${list.filter((c) => c.file !== null).length})`;
    $('never-reached-count').textContent = `(${unreached.length})`;
    $('coverage-note').textContent = list.length ? '' : 'No point is compiled in and none was enabled.';
  }
  $('coverage-refresh').addEventListener('click', () => loadCoverage().then(renderCatalogue, (e) => showError('coverage', e)));

  /* ---- periodic refresh ------------------------------------------------------------------- */

  let refreshTimer = null;
  let refreshing = false;
  let lastCoverage = -Infinity;

  async function refresh() {
    refreshTimer = null;
    if (refreshing) { refreshSoon(300); return; }
    refreshing = true;
    try {
      const st = await loadStatus();
      if (state.instance !== null && st.instance !== state.instance) restartStream();
      state.instance = st.instance;
      if (performance.now() - lastCoverage > 5000) {
        lastCoverage = performance.now();
        await loadCoverage();
      }
      await loadCatalogue();
    } catch (err) {
      showError('refresh', err);
    } finally {
      refreshing = false;
    }
    refreshSoon(document.hidden ? POLL_MS * 5 : POLL_MS);
  }

  function refreshSoon(ms) {
    if (refreshTimer !== null) {
      if (ms > 0) return;
      clearTimeout(refreshTimer);
    }
    if (ms === 0) lastCoverage = -Infinity;
    refreshTimer = setTimeout(refresh, ms);
  }

  /* ---- the event stream ------------------------------------------------------------------- */

  let lastSeq = null;      // the last seq received: Last-Event-ID on a reconnect
  let streamAbort = null;
  let streamGen = 0;

  function setStream(cls, text) {
    const s = $('stream-state');
    s.className = 'pill ' + cls;
    s.textContent = 'stream: ' + text;
  }

  /* Reads an SSE body: calls onEvent(type, data) per event and onComment(text) per comment. */
  async function readSSE(body, onEvent, onComment) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let data = [];
    let type = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let start = 0;
      let nl;
      while ((nl = buf.indexOf('\n', start)) >= 0) {
        let line = buf.slice(start, nl);
        start = nl + 1;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) onEvent(type || 'message', data.join('\n'));
          data = [];
          type = '';
        } else if (line[0] === ':') {
          onComment(line.slice(1).trim());
        } else {
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? '' : line.slice(c + 1);
          if (v[0] === ' ') v = v.slice(1);
          if (field === 'data') data.push(v);
          else if (field === 'event') type = v;
        }
      }
      buf = buf.slice(start);
    }
  }

  async function streamLoop(gen) {
    let backoff = 500;
    while (gen === streamGen) {
      const ctrl = new AbortController();
      streamAbort = ctrl;
      try {
        let query = '?phase=all';
        if (lastSeq === null) {
          const st = state.status || await getJSON('/status');
          query += '&since=' + Math.max(0, st.seq - REPLAY);
        }
        const headers = authHeaders({ Accept: 'text/event-stream' }); // after any wait for the token
        if (lastSeq !== null) headers['Last-Event-ID'] = String(lastSeq);
        const resp = await fetch(API + '/events' + query, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (resp.status === 401) {
          const why = await errorMessage(resp);
          setStream('down', 'needs the token');
          if (!(await askToken('The event stream answered 401: ' + why + '. Give the server\'s token.'))) {
            await new Promise((r) => setTimeout(r, 5000));
          }
          continue;
        }
        if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
        backoff = 500;
        await readSSE(resp.body, (type, data) => onStreamEvent(type, data),
          (comment) => { if (comment === 'connected') setStream(paused ? 'paused' : 'live', paused ? 'paused' : 'live'); });
        setStream('down', 'ended, reconnecting');
      } catch (err) {
        if (gen !== streamGen) return;
        setStream('down', (err instanceof ApiError ? `${err.status} ${err.message}` : 'unreachable') + ', reconnecting');
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  function restartStream() {
    streamGen++;
    if (streamAbort) streamAbort.abort();
    if (state.instance !== null && state.status && state.status.instance !== state.instance) lastSeq = null;
    streamLoop(streamGen);
  }

  /* ---- events: kept, filtered, drawn as a virtual list ------------------------------------- */
  /* The table holds only the rows that fit its scroll box (a small pool refilled on scroll and
   * once a frame), between two spacer rows that give the scroll bar the height of every matching
   * event kept: the DOM stays the same size at any event rate. */

  let ROW_H = 21;           // px, measured on the first row drawn; rows do not wrap (fixed layout)
  let rowMeasured = false;
  const kept = [];          // the last KEEP_EVENTS events (and overflow notices), oldest first
  let view = [];            // the kept events that pass the filters, oldest first
  let paused = false;
  let received = 0;
  let missed = 0;
  let newWhilePaused = 0;
  let frameQueued = false;
  let viewDirty = true;
  let match = () => true;

  function onStreamEvent(type, data) {
    let ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    if (type === 'overflow') {
      ev = { overflow: true, dropped: ev.dropped, next_seq: ev.next_seq };
      missed += ev.dropped || 0;
    } else {
      if (typeof ev.seq === 'number') lastSeq = ev.seq;
      received++;
      if (ev.phase === 'hit') timeline.add(ev);
      if (ev.injection !== undefined) catalogueTouched();
    }
    kept.push(ev);
    if (kept.length > KEEP_EVENTS * 1.25) kept.splice(0, kept.length - KEEP_EVENTS);
    if (paused) {
      newWhilePaused++;
    } else if (match(ev)) {
      view.push(ev);
      if (view.length > KEEP_EVENTS * 1.25) view.splice(0, view.length - KEEP_EVENTS);
      viewDirty = true;
      // Scrolled down to older events: keep them where they are on the screen.
      const box = $('events-scroll');
      if (box.scrollTop > 0) box.scrollTop += ROW_H;
    }
    queueFrame();
  }

  let touchTimer = null;
  function catalogueTouched() {
    if (touchTimer === null) touchTimer = setTimeout(() => { touchTimer = null; refreshSoon(0); }, 1000);
  }

  function queueFrame() {
    if (!frameQueued) {
      frameQueued = true;
      requestAnimationFrame(frame);
    }
  }

  function eventFilter() {
    const inj = $('filter-injection').value.trim().toLowerCase();
    const type = $('filter-type').value;
    const phase = $('filter-phase').value;
    const shardText = $('filter-shard').value.trim();
    const shard = shardText === '' ? null : Number(shardText);
    return (ev) => ev.overflow ||
      ((!inj || ev.injection.toLowerCase().includes(inj)) && (!type || ev.type === type) &&
       (!phase || ev.phase === phase) && (shard === null || ev.shard === shard));
  }

  function fmtTime(ev) {
    const ms = ev.ts_ns / 1e6;
    const d = new Date(ms);
    const pad = (n, w) => String(n).padStart(w, '0');
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`;
  }

  const CELLS = ['num', 'mono', 'mono', 'type', '', 'num', 'num muted', 'num', '', 'params mono', 'where mono muted'];

  function newRow() {
    const tr = el('tr');
    for (const cls of CELLS) tr.append(el('td', cls || null));
    return tr;
  }

  function fillRow(tr, ev) {
    if (tr.ev === ev) return;
    tr.ev = ev;
    const td = tr.cells;
    if (ev.overflow) {
      tr.className = 'overflow';
      delete tr.dataset.seq;
      delete tr.dataset.injection;
      for (let i = 0; i < td.length; i++) td[i].textContent = '';
      td[2].textContent = `overflow: ${ev.dropped} event(s) dropped before seq ${ev.next_seq}`;
      return;
    }
    tr.className = '';
    tr.dataset.seq = String(ev.seq);
    tr.dataset.injection = ev.injection;
    const params = ev.parameters ? Object.entries(ev.parameters).map(([k, v]) => `${k}=${v}`).join(' ') : '';
    const where = ev.file ? `${ev.file}:${ev.line}` : '';
    const text = [String(ev.seq), fmtTime(ev), ev.injection, ev.type, ev.phase, String(ev.shard), String(ev.thread),
      ev.enters === undefined ? '' : String(ev.enters), ev.action || '', params + (ev.truncated ? ' (truncated)' : ''),
      ltr(where)];
    for (let i = 0; i < text.length; i++) td[i].textContent = text[i];
    td[2].title = ev.injection;
    td[9].title = text[9];
    td[10].title = where;
  }

  function updateCount(shown) {
    let text = `${received} received, ${view.length} listed`;
    if (missed) text += `, ${missed} missed (overflow)`;
    if (paused) text += `, paused: ${newWhilePaused} new`;
    $('event-count').textContent = text;
    $('events-empty').hidden = shown > 0 || received > 0;
  }

  /* Shows the rows of `view` (newest first) that the scroll box shows now. */
  function drawRows() {
    viewDirty = false;
    const box = $('events-scroll');
    const tbody = $('events').tBodies[0];
    const visible = Math.ceil(box.clientHeight / ROW_H) + 2;
    const first = Math.min(Math.floor(box.scrollTop / ROW_H), Math.max(0, view.length - visible));
    const count = Math.max(0, Math.min(visible, view.length - first));
    let top = tbody.firstElementChild;
    if (!top || !top.classList.contains('spacer')) {
      const spacer = () => {
        const tr = el('tr', 'spacer');
        const td = el('td');
        td.colSpan = CELLS.length;
        tr.append(td);
        return tr;
      };
      top = spacer();
      tbody.replaceChildren(top, spacer());
    }
    const bottom = tbody.lastElementChild;
    let rows = tbody.rows.length - 2;
    while (rows < count) { tbody.insertBefore(newRow(), bottom); rows++; }
    while (rows > count) { bottom.previousElementSibling.remove(); rows--; }
    let tr = top.nextElementSibling;
    for (let i = 0; i < count; i++, tr = tr.nextElementSibling) fillRow(tr, view[view.length - 1 - first - i]);
    if (!rowMeasured && count > 0) {
      const h = top.nextElementSibling.getBoundingClientRect().height;
      if (h > 0) {
        rowMeasured = true;
        if (Math.abs(h - ROW_H) > 0.5) { ROW_H = h; drawRows(); return; }
      }
    }
    top.style.height = first * ROW_H + 'px';
    bottom.style.height = Math.max(0, view.length - first - count) * ROW_H + 'px';
    updateCount(count);
  }

  /* New events redraw the table at most every TABLE_MS and the timeline every TIMELINE_MS: faster
   * than that nobody reads them, and the frames stay free for scrolling. A scroll redraws at once. */
  const TABLE_MS = 100;
  const TIMELINE_MS = 250;
  let lastTable = 0;
  let scrolled = false;

  function frame(now) {
    frameQueued = false;
    if (viewDirty && (scrolled || now - lastTable >= TABLE_MS)) {
      scrolled = false;
      lastTable = now;
      drawRows();
    } else if (!viewDirty) {
      updateCount(view.length);
    }
    timeline.drawIfDirty(now);
    if (viewDirty || timeline.dirty) queueFrame();
  }

  /* Rebuilds the list from the kept events (after a filter change, a resume or a clear). */
  function rebuildTable() {
    match = eventFilter();
    view = kept.filter(match);
    $('events-scroll').scrollTop = 0;
    drawRows();
  }

  $('events-scroll').addEventListener('scroll', () => { viewDirty = true; scrolled = true; queueFrame(); },
    { passive: true });
  for (const id of ['filter-injection', 'filter-type', 'filter-phase', 'filter-shard']) {
    $(id).addEventListener('input', rebuildTable);
  }
  $('pause-button').addEventListener('click', () => {
    paused = !paused;
    $('pause-button').textContent = paused ? 'Resume' : 'Pause';
    setStream(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
    newWhilePaused = 0;
    if (!paused) rebuildTable();
    else updateCount(view.length);
  });
  $('clear-button').addEventListener('click', () => {
    kept.length = 0;
    received = 0;
    missed = 0;
    rebuildTable();
  });

  /* ---- the timeline: hits per injection over time, one lane per shard --------------------- */

  const PALETTE = ['#2f6fde', '#e8590c', '#2f9e44', '#c2255c', '#7048e8', '#0c8599', '#e0a800', '#5c940d',
    '#d6336c', '#1971c2', '#f76707', '#9c36b5'];

  const timeline = {
    buckets: new Map(),  // bucket index -> Map(shard + '\n' + injection -> count)
    colors: new Map(),   // injection -> colour, in the order first seen
    shards: new Set(),
    latestMs: 0,
    dirty: true,
    lastDraw: 0,

    color(name) {
      let c = this.colors.get(name);
      if (c === undefined) {
        c = name === '(other)' ? '#868e96' : PALETTE[this.colors.size % PALETTE.length];
        if (this.colors.size < 1024) this.colors.set(name, c);
      }
      return c;
    },

    add(ev) {
      const ms = ev.ts_ns / 1e6;
      const b = Math.floor(ms / BUCKET_MS);
      let m = this.buckets.get(b);
      if (m === undefined) {
        m = new Map();
        this.buckets.set(b, m);
        this.prune(b);
      }
      let key = ev.shard + '\n' + ev.injection;
      if (!m.has(key) && m.size >= MAX_KEYS) key = ev.shard + '\n(other)';
      m.set(key, (m.get(key) || 0) + 1);
      if (this.shards.size < 1024) this.shards.add(ev.shard);
      this.color(key.slice(key.indexOf('\n') + 1));
      if (ms > this.latestMs) this.latestMs = ms;
      this.dirty = true;
    },

    prune(newest) {
      const oldest = newest - KEEP_MS / BUCKET_MS;
      for (const b of this.buckets.keys()) if (b < oldest) this.buckets.delete(b);
    },

    drawIfDirty(now) {
      const since = now - this.lastDraw;
      if ((this.dirty && since >= TIMELINE_MS) || since > 500) this.draw();
    },

    draw() {
      this.dirty = false;
      this.lastDraw = performance.now();
      const canvas = $('timeline');
      const css = getComputedStyle(document.documentElement);
      const fg = css.getPropertyValue('--muted').trim() || '#667085';
      const line = css.getPropertyValue('--line').trim() || '#dde1e8';
      const shards = [...this.shards].sort((a, b) => a - b);
      if (shards.length === 0) shards.push(0);
      const laneH = shards.length > 16 ? 14 : 30;
      const top = 18;
      const labelW = 62;
      const width = Math.max(200, canvas.clientWidth);
      const height = top + shards.length * laneH + 4;
      const dpr = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
        canvas.width = Math.round(width * dpr);
        canvas.height = Math.round(height * dpr);
        canvas.style.height = height + 'px';
      }
      const g = canvas.getContext('2d');
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, width, height);
      const windowMs = Number($('timeline-window').value) * 1000;
      const right = Math.max(Date.now(), this.latestMs) + BUCKET_MS;
      const left = right - windowMs;
      const plotW = width - labelW - 6;
      const x = (ms) => labelW + ((ms - left) / windowMs) * plotW;
      // Buckets narrower than 3 px are merged into groups, so a wide window stays legible.
      const group = Math.max(1, Math.ceil(3 / (plotW / (windowMs / BUCKET_MS))));
      const groupMs = group * BUCKET_MS;
      // Axis: a tick every 5, 10 or 60 seconds, labelled relative to now.
      g.font = '11px system-ui, sans-serif';
      g.fillStyle = fg;
      g.strokeStyle = line;
      g.lineWidth = 1;
      const tick = windowMs <= 30000 ? 5000 : windowMs <= 60000 ? 10000 : 60000;
      g.textAlign = 'center';
      for (let t = 0; t <= windowMs; t += tick) {
        const px = Math.round(x(right - t)) + 0.5;
        g.beginPath();
        g.moveTo(px, top - 4);
        g.lineTo(px, height - 4);
        g.stroke();
        g.fillText(t === 0 ? 'now' : `-${t / 1000}s`, Math.min(px, width - 14), 11);
      }
      g.textAlign = 'left';
      const laneOf = new Map(shards.map((s, i) => [s, i]));
      for (let i = 0; i < shards.length; i++) {
        const y = top + i * laneH;
        g.fillStyle = fg;
        g.fillText(`shard ${shards[i]}`, 4, y + laneH / 2 + 4);
        g.beginPath();
        g.moveTo(labelW, y + laneH + 0.5);
        g.lineTo(width - 6, y + laneH + 0.5);
        g.stroke();
      }
      // Sum the buckets into (group, shard, injection) counts inside the window.
      const groups = new Map();
      const first = Math.floor(left / BUCKET_MS);
      for (const [b, m] of this.buckets) {
        if (b < first) continue;
        const gi = Math.floor(b / group);
        let gm = groups.get(gi);
        if (gm === undefined) groups.set(gi, (gm = new Map()));
        for (const [key, n] of m) gm.set(key, (gm.get(key) || 0) + n);
      }
      let max = 1;
      const totals = new Map();
      for (const gm of groups.values()) {
        const perShard = new Map();
        for (const [key, n] of gm) {
          const shard = Number(key.slice(0, key.indexOf('\n')));
          perShard.set(shard, (perShard.get(shard) || 0) + n);
        }
        for (const n of perShard.values()) max = Math.max(max, n);
      }
      // Bars: height grows with the log of the count, stacked by injection in first-seen order.
      let marks = 0;
      let hits = 0;
      const scale = Math.log1p(max);
      const barW = Math.max(2, (groupMs / windowMs) * plotW - 1);
      for (const [gi, gm] of groups) {
        const px = x(gi * groupMs);
        if (px + barW < labelW) continue;
        const byShard = new Map();
        for (const [key, n] of gm) {
          const nl = key.indexOf('\n');
          const shard = Number(key.slice(0, nl));
          const name = key.slice(nl + 1);
          if (!byShard.has(shard)) byShard.set(shard, []);
          byShard.get(shard).push([name, n]);
          totals.set(name, (totals.get(name) || 0) + n);
          hits += n;
        }
        for (const [shard, list] of byShard) {
          const lane = laneOf.get(shard);
          if (lane === undefined) continue;
          const total = list.reduce((s, [, n]) => s + n, 0);
          const h = Math.max(3, (laneH - 6) * (Math.log1p(total) / scale));
          let y = top + (lane + 1) * laneH - 2;
          for (const [name, n] of list) {
            const part = (h * n) / total;
            g.fillStyle = this.color(name);
            g.fillRect(Math.max(labelW, px), y - part, barW, part);
            y -= part;
          }
          marks++;
        }
      }
      canvas.dataset.marks = String(marks);
      canvas.dataset.hits = String(hits);
      canvas.dataset.buckets = String(this.buckets.size);
      this.legend(totals);
    },

    legend(totals) {
      const key = [...totals].map(([n, c]) => n + '=' + c).join(',');
      if (key === this.legendKey) return;
      this.legendKey = key;
      const box = $('timeline-legend');
      if (totals.size === 0) {
        box.replaceChildren(el('span', 'muted', 'No hit in this window.'));
        return;
      }
      box.replaceChildren(...[...totals].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([name, n]) => {
        const item = el('span', 'mono');
        item.dataset.injection = name;
        const sw = el('span', 'swatch');
        sw.style.background = this.color(name);
        item.append(sw, `${name} `, el('span', 'muted', String(n)));
        return item;
      }));
    },
  };
  $('timeline-window').addEventListener('change', () => timeline.draw());
  window.addEventListener('resize', () => timeline.draw());
  setInterval(() => queueFrame(), 500);

  /* What a test or a curious user can read without parsing the page. */
  window.errinjDashboard = {
    stats: () => ({
      rows: $('events').tBodies[0].querySelectorAll('tr:not(.spacer)').length, listed: view.length, kept: kept.length,
      received, missed,
      buckets: timeline.buckets.size, marks: Number($('timeline').dataset.marks || 0),
    }),
  };

  refresh();
  streamLoop(streamGen);
  timeline.draw();
})();
