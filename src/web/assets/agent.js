// The agent desktop: state and time in state, ready/pause/logout, the screen pop with the
// caller's number and this agent's earlier calls with it, wrap-up (disposition and notes),
// preview dialing, and today's own figures. Live over the event stream (EventSource resumes
// with Last-Event-ID after a network blip; a `resync` reloads everything).
import { t, session, api, el, $, show, duration, percent, clock, now, notify, failed, start, ApiError } from './common.js';

let me = null;          // AgentView from GET agents
let current = null;     // {call, number, name, queue, entered_at_ms, answered_at_ms, ended}
let preview = null;     // PreviewView
let stream = null;
let figuresTimer = null;
let figuresSoon = null;

function lastCall() {
  try { return JSON.parse(sessionStorage.getItem('ctid.lastCall') || 'null'); } catch (_) { return null; }
}
function setLastCall(c) { sessionStorage.setItem('ctid.lastCall', JSON.stringify(c)); }

function fillSelect(sel, values, label) {
  const keep = sel.value;
  sel.replaceChildren(...values.map((v) => el('option', { value: v }, label ? label(v) : v)));
  if (values.includes(keep)) sel.value = keep;
}

async function refreshMe() {
  const all = await api('agents');
  me = all.find((a) => a.id === session.agent) || null;
  renderState();
  if (me && me.call && (!current || current.call !== me.call)) await popCall(me.call);
}

function renderState() {
  if (!me) return;
  const st = $('state');
  st.textContent = t('state.' + me.state);
  st.className = 'badge s-' + me.state;
  st.dataset.state = me.state;
  $('reason').textContent = me.reason || '';
  const p = $('pending');
  p.textContent = me.pending_pause ? t('state.pending', { reason: me.pending_pause }) : '';
  show(p, !!me.pending_pause);
  show($('phone'), !me.registered);
  const busy = me.state === 'ringing' || me.state === 'on_call';
  $('btn-ready').disabled = me.state === 'available' || busy;
  $('btn-pause').disabled = me.state === 'logged_out' || (me.state === 'paused' && me.reason === $('pause-reason').value);
  $('btn-logout').disabled = me.state === 'logged_out';
  if (me.state === 'wrapup' && !$('wrapup-card').hidden) $('btn-end-wrapup').disabled = false;
  tick();
}

function tick() {
  if (me) $('state-time').textContent = me.since_ms ? duration((now() - me.since_ms) / 1000) : '—';
  if (current) {
    const end = current.ended_at_ms || now();
    const answered = current.answered_at_ms;
    $('call-wait').textContent = duration(((answered || end) - current.entered_at_ms) / 1000);
    $('call-talk').textContent = answered ? duration((end - answered) / 1000) : '—';
  }
  if (preview) {
    const left = (preview.expires_at_ms - now()) / 1000;
    $('preview-left').textContent = duration(left);
    $('preview-left').className = left < 10 ? 'urgent' : '';
  }
}

// The screen pop: what is known of call `id`, then this agent's earlier calls with the number.
async function popCall(id) {
  if (current && current.call === id) return; // the offer event and a board refresh both ask
  const c = { call: id, number: null, name: null, queue: null, entered_at_ms: now(), answered_at_ms: null, ended_at_ms: null };
  current = c;
  let live = null;
  try { live = await fetchJson('/web/api/live/calls/' + id); } catch (_) { live = null; }
  if (current !== c) return;
  if (live) Object.assign(c, { number: live.caller_number, queue: live.queue, entered_at_ms: live.entered_at_ms, answered_at_ms: live.answered_at_ms });
  show($('call-none'), false);
  show($('call'), true);
  $('call-banner').textContent = t('call.incoming');
  $('call-banner').className = 'banner ringing';
  $('call-number').textContent = current.number || '—';
  $('call-queue').textContent = current.queue || '—';
  $('call-name').textContent = '—';
  document.title = '☎ ' + (current.number || '') + ' · ctid';
  tick();
  if (current.queue) {
    try {
      const q = await api('queues/' + encodeURIComponent(current.queue));
      const w = q.waiting.find((x) => x.call === id);
      if (w && w.caller_name) { current.name = w.caller_name; $('call-name').textContent = w.caller_name; }
    } catch (_) { /* the caller may have left the queue already */ }
  }
  await loadHistory(current.number, id);
}

async function fetchJson(url) {
  const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!r.ok) throw new ApiError(r.status, 'http', r.statusText);
  return r.json();
}

let historyFor = null;
async function loadHistory(number, exclude) {
  const tbl = $('history');
  tbl.replaceChildren();
  historyFor = exclude;
  if (!number) return;
  try {
    const page = await api('calls?limit=10&caller=' + encodeURIComponent(number));
    if (historyFor !== exclude) return; // a newer call's history is on its way
    tbl.replaceChildren();
    const rows = page.calls.filter((c) => c.id !== exclude);
    if (!rows.length) { tbl.append(el('caption', {}, t('history.none'))); return; }
    tbl.append(el('thead', {}, el('tr', {},
      ['history.when', 'call.queue', 'history.outcome', 'history.talk', 'history.disposition', 'history.notes']
        .map((k) => el('th', { scope: 'col' }, t(k))))));
    tbl.append(el('tbody', {}, rows.map((c) => el('tr', {},
      el('td', {}, clock(c.entered_at_ms)), el('td', {}, c.queue || '—'), el('td', {}, c.outcome || '—'),
      el('td', {}, duration((c.talk_ms || 0) / 1000)), el('td', {}, c.disposition || '—'), el('td', {}, c.notes || '')))));
  } catch (e) { tbl.append(el('caption', {}, t('error', { message: e.message }))); }
}

function callEnded() {
  if (!current) return;
  current.ended_at_ms = now();
  $('call-banner').textContent = t('call.ended');
  $('call-banner').className = 'banner ended';
  document.title = 'ctid · ' + t('agent.title');
  const c = { call: current.call, number: current.number };
  setLastCall(c);
  openWrapup(c);
  // The call record is written in batches: read the figures now and once more shortly after.
  loadFigures();
  setTimeout(loadFigures, 3000);
}

function openWrapup(c) {
  show($('wrapup-card'), true);
  $('wrapup-call').textContent = t('wrapup.call', { call: c.call, number: c.number || '—' });
  $('wrapup-form').dataset.call = c.call;
  $('wrapup-msg').textContent = '';
  $('btn-save').disabled = false;
  $('disposition').focus();
}

function clearCall() {
  current = null;
  show($('call'), false);
  show($('call-none'), true);
}

async function loadPreview() {
  try {
    const r = await api('agents/' + encodeURIComponent(session.agent) + '/preview');
    preview = r.preview;
  } catch (_) { preview = null; }
  show($('preview-card'), !!preview);
  if (!preview) return;
  const c = preview.contact || {};
  $('preview-name').textContent = c.name || c.customer_id || '—';
  $('preview-number').textContent = preview.number;
  $('preview-list').textContent = preview.list_name;
  $('preview-attempts').textContent = String(c.attempts ?? 0);
  const f = $('preview-fields');
  f.replaceChildren();
  for (const [k, v] of Object.entries(c.fields || {})) f.append(el('dt', {}, k), el('dd', {}, String(v)));
  tick();
  $('btn-accept').focus();
}

async function loadFigures() {
  const box = $('figures');
  try {
    const r = await api('reports/agents?agent=' + encodeURIComponent(session.agent));
    const a = (r.agents || [])[0] || {};
    box.replaceChildren(...[
      ['figures.answered', a.answered ?? 0], ['figures.aht', duration(a.aht_secs)],
      ['figures.talk', duration(a.talk_secs)], ['figures.logged_in', duration(a.logged_in_secs)],
      ['figures.paused', duration(a.paused_secs)], ['figures.occupancy', percent(a.occupancy)],
      ['figures.survey', a.survey_avg == null ? '—' : `${Math.round(a.survey_avg * 10) / 10} / 5 (${a.survey_responses})`],
    ].map(([k, v]) => el('div', {}, el('dt', {}, t(k)), el('dd', { 'data-figure': k }, String(v)))));
  } catch (e) {
    box.replaceChildren(el('dd', {}, t('error', { message: e.message })));
  }
}

function connect() {
  if (stream) stream.close();
  stream = new EventSource('/web/api/v1/events');
  const conn = $('conn');
  stream.onopen = () => { conn.textContent = t('conn.live'); conn.className = 'conn ok'; refreshMe().catch(failed); };
  stream.onerror = async () => {
    conn.textContent = t('conn.lost'); conn.className = 'conn lost';
    if (stream.readyState === EventSource.CLOSED) {
      // A refused reconnect (e.g. the session ended): ask why, then try again.
      try { await api('agents'); setTimeout(connect, 2000); } catch (_) { /* signed out */ }
    }
  };
  const mine = (d) => d.agent === session.agent;
  const on = (type, f) => stream.addEventListener(type, (ev) => {
    let d = {};
    try { d = JSON.parse(ev.data); } catch (_) { return; }
    f(d);
  });
  on('agent_state', (d) => {
    if (!mine(d)) return;
    refreshMe().catch(failed);
    // Back from a call: the figures have one more (debounced: a burst of changes reads once).
    if (d.state === 'available' || d.state === 'wrapup') {
      clearTimeout(figuresSoon);
      figuresSoon = setTimeout(loadFigures, 1500);
    }
  });
  on('call_offered', (d) => { if (mine(d)) popCall(d.call).catch(failed); });
  on('call_answered', (d) => {
    if (mine(d) && current && current.call === d.call) {
      current.answered_at_ms = now();
      $('call-banner').textContent = t('state.on_call');
      $('call-banner').className = 'banner talking';
    }
  });
  on('call_ended', (d) => { if (current && current.call === d.call) callEnded(); });
  on('call_abandoned', (d) => { if (current && current.call === d.call && !current.answered_at_ms) clearCall(); });
  on('preview_offered', (d) => { if (mine(d)) loadPreview(); });
  on('preview_ended', (d) => { if (mine(d)) { preview = null; show($('preview-card'), false); } });
  on('resync', () => { refreshMe().catch(failed); loadPreview(); });
}

async function act(path, body) {
  try {
    me = await api('agents/' + encodeURIComponent(session.agent) + '/' + path, { method: 'POST', body: body || {} });
    renderState();
  } catch (e) { failed(e); }
}

let wired = false;
function wire() {
  if (wired) return;
  wired = true;
  $('btn-ready').addEventListener('click', () => {
    if (!me) return;
    if (me.state === 'logged_out') act('login');
    else if (me.state === 'paused') act('unpause');
    else if (me.state === 'wrapup') act('wrapup/end');
  });
  $('btn-pause').addEventListener('click', () => act('pause', { reason: $('pause-reason').value }));
  $('pause-reason').addEventListener('change', renderState);
  $('btn-logout').addEventListener('click', () => act('logout'));
  $('btn-end-wrapup').addEventListener('click', async () => {
    if (me && me.state === 'wrapup') await act('wrapup/end');
    show($('wrapup-card'), false);
    sessionStorage.removeItem('ctid.lastCall');
    if (current && current.ended_at_ms) clearCall();
  });
  $('wrapup-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const call = $('wrapup-form').dataset.call;
    try {
      await api('calls/' + call + '/disposition', { method: 'POST', body: { code: $('disposition').value, notes: $('notes').value } });
      $('wrapup-msg').textContent = t('wrapup.saved');
      $('wrapup-form').dataset.saved = call;
      notify(t('wrapup.saved'));
      $('notes').value = '';
      $('btn-end-wrapup').focus();
    } catch (e) { $('wrapup-msg').textContent = t('error', { message: e.message }); }
  });
  $('btn-accept').addEventListener('click', async () => {
    try { await api('agents/' + encodeURIComponent(session.agent) + '/preview/accept', { method: 'POST', body: {} }); notify(t('done')); } catch (e) { failed(e); }
  });
  $('btn-skip').addEventListener('click', async () => {
    try { await api('agents/' + encodeURIComponent(session.agent) + '/preview/skip', { method: 'POST', body: {} }); preview = null; show($('preview-card'), false); } catch (e) { failed(e); }
  });
  setInterval(tick, 1000);
}

function ready(s) {
  if (s.role !== 'agent') {
    notify(t('error', { message: 'this page is for agents; supervisors use /board' }), 'error');
    return;
  }
  fillSelect($('pause-reason'), s.center.pause_reasons);
  fillSelect($('disposition'), s.center.dispositions);
  wire();
  renderState();
  refreshMe().catch(failed);
  loadPreview();
  loadFigures();
  clearInterval(figuresTimer);
  figuresTimer = setInterval(loadFigures, 60000);
  const lc = lastCall();
  if (lc) openWrapup(lc);
  connect();
}

start({ onReady: ready, onOut: () => { if (stream) stream.close(); clearInterval(figuresTimer); } });
