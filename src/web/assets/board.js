// The supervisor's board: every queue's live and today's figures against its goals (coloured
// when at risk), its waiting callers (move to the front or to another queue), every agent
// (force pause or logout), open complaints near their deadline and the callback lists (pause,
// resume). Polls every 2 s (a wallboard session has no event stream: it sees no customer data).
import { t, session, api, el, $, show, duration, percent, clock, now, notify, failed, start } from './common.js';

const POLL_MS = 2000;
const SLOW_POLL_MS = 15000;
const NEAR_DEADLINE_MS = 24 * 3600 * 1000;
let timers = [];
let busy = false;
let queueNames = [];
// What the supervisor picked in each row's menu, kept across the 2-second redraws.
const chosen = new Map();
let menuFocusAt = 0;

// A <select> whose pick survives redraws under `key`.
function menu(key, attrs, values) {
  const sel = el('select', attrs, values.map((v) => el('option', { value: v }, v)));
  if (chosen.has(key) && values.includes(chosen.get(key))) sel.value = chosen.get(key);
  sel.addEventListener('change', () => chosen.set(key, sel.value));
  sel.addEventListener('focus', () => { menuFocusAt = Date.now(); });
  return sel;
}

const sup = () => session && session.role === 'supervisor';

// ok / warn / bad for a ratio against its goal (warn within 5 points of it).
function level(value, goal) {
  if (value === null || value === undefined) return 'none';
  if (value < goal) return 'bad';
  if (value < goal + 0.05) return 'warn';
  return 'ok';
}

function figure(label, value, cls, sub, key) {
  return el('div', { class: 'fig ' + (cls || ''), 'data-fig': key },
    el('span', { class: 'label' }, label), el('span', { class: 'value' }, value), sub ? el('span', { class: 'sub' }, sub) : null);
}

function tile(q, waiting) {
  const goalPct = Math.round(q.sl_goal * 100) + ' %';
  const longest = q.now.longest_wait_secs;
  const waitCls = q.now.waiting === 0 ? 'ok' : longest >= q.sl_target_secs ? 'bad' : longest >= 0.8 * q.sl_target_secs ? 'warn' : 'ok';
  const slToday = q.today.sl_offered, slInt = q.current_interval.figures.sl_offered;
  const ar = q.today.answer_rate;
  const states = Object.entries(q.now.agents || {}).filter(([, n]) => n > 0)
    .map(([s, n]) => el('li', { class: 's-' + s }, `${t('state.' + s)} ${n}`));
  const worst = [waitCls, level(slToday, q.sl_goal), level(slInt, q.sl_goal), level(ar, q.answer_rate_goal)];
  const overall = worst.includes('bad') ? 'bad' : worst.includes('warn') ? 'warn' : 'ok';
  return el('article', { class: 'tile ' + overall, 'data-queue': q.queue, 'aria-labelledby': 'qh-' + q.queue },
    el('h3', { id: 'qh-' + q.queue }, q.queue),
    el('div', { class: 'figs' },
      figure(t('q.waiting'), String(q.now.waiting), waitCls, null, 'waiting'),
      figure(t('q.longest'), duration(longest), waitCls, null, 'longest'),
      figure(t('q.sl_today'), percent(slToday), level(slToday, q.sl_goal), t('q.goal', { goal: goalPct, secs: q.sl_target_secs }), 'sl-today'),
      figure(t('q.sl_interval'), percent(slInt), level(slInt, q.sl_goal), q.current_interval.start ? t('q.from', { time: clock(Date.parse(q.current_interval.start)) }) : null, 'sl-interval'),
      figure(t('q.answer_rate'), percent(ar), level(ar, q.answer_rate_goal), t('q.target', { goal: Math.round(q.answer_rate_goal * 100) + ' %' }), 'answer-rate')),
    el('ul', { class: 'states', 'aria-label': t('q.agents') }, states),
    callers(q.queue, waiting));
}

function callers(queue, view) {
  const box = el('div', { class: 'callers' }, el('h4', {}, t('q.callers')));
  if (!view || !view.waiting.length) { box.append(el('p', { class: 'hint' }, t('q.none_waiting'))); return box; }
  const rows = view.waiting.map((c) => {
    const tr = el('tr', { 'data-call': c.call },
      el('td', {}, String(c.position)),
      el('td', { class: 'number' }, c.caller_number || (sup() ? '—' : t('hidden'))),
      el('td', {}, c.caller_name || ''),
      el('td', {}, duration(c.wait_secs)));
    if (sup()) {
      const others = queueNames.filter((n) => n !== queue);
      const sel = menu('move:' + c.call, { 'aria-label': t('q.move_to') + ' (' + (c.caller_number || c.call) + ')', class: 'move-to' }, others);
      tr.append(el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'to-front', on: { click: () => move(c.call, { to_front: true }) } }, t('q.to_front')),
        sel,
        el('button', { type: 'button', class: 'move', disabled: !others.length, on: { click: () => move(c.call, { queue: sel.value }) } }, t('q.move'))));
    }
    return tr;
  });
  box.append(el('div', { class: 'scroll' }, el('table', { class: 'table' }, el('tbody', {}, rows))));
  return box;
}

async function move(call, body) {
  try { await api('calls/' + call + '/move', { method: 'POST', body }); notify(t('done')); await poll(); } catch (e) { failed(e); }
}

function agentsTable(agents) {
  const head = ['agents.agent', 'agents.state', 'agents.reason', 'agents.call', 'agents.time', 'agents.answered'];
  if (sup()) head.push('agents.actions');
  const reasons = session.center.pause_reasons;
  const rows = agents.map((a) => {
    const tr = el('tr', { 'data-agent': a.id },
      el('th', { scope: 'row' }, `${a.name} (${a.id})`),
      el('td', {}, el('span', { class: 'badge s-' + a.state }, t('state.' + a.state)), a.registered ? '' : el('span', { class: 'phone-off', title: t('state.phone_off'), 'aria-label': t('state.phone_off') }, ' ⚠')),
      el('td', {}, a.reason || a.pending_pause || ''),
      el('td', {}, a.call ? String(a.call) : ''),
      el('td', { class: 'since' }, a.since_ms ? duration((now() - a.since_ms) / 1000) : '—'),
      el('td', {}, String(a.calls_answered)));
    if (sup()) {
      const sel = menu('pause:' + a.id, { 'aria-label': t('pause.reason') + ' ' + a.id, class: 'reason' }, reasons);
      tr.append(el('td', { class: 'actions' }, sel,
        el('button', { type: 'button', class: 'force-pause', disabled: a.state === 'logged_out', on: { click: () => agentAct(a.id, 'pause', { reason: sel.value }) } }, t('agents.force_pause')),
        el('button', { type: 'button', class: 'force-logout', disabled: a.state === 'logged_out', on: { click: () => agentAct(a.id, 'logout', {}) } }, t('agents.force_logout'))));
    }
    return tr;
  });
  $('agents').replaceChildren(
    el('thead', {}, el('tr', {}, head.map((k) => el('th', { scope: 'col' }, t(k))))),
    el('tbody', {}, rows));
}

async function agentAct(id, what, body) {
  try { await api('agents/' + encodeURIComponent(id) + '/' + what, { method: 'POST', body }); notify(t('done')); await poll(); } catch (e) { failed(e); }
}

// Keep keyboard focus across a redraw: remember the focused control by its place.
function focusKey() {
  const a = document.activeElement;
  if (!a || a === document.body) return null;
  const row = a.closest('[data-agent],[data-call],[data-list]');
  return row ? { sel: row.dataset.agent ? `[data-agent="${row.dataset.agent}"]` : row.dataset.call ? `[data-call="${row.dataset.call}"]` : `[data-list="${row.dataset.list}"]`, cls: a.className, value: a.value } : null;
}
function restoreFocus(k) {
  if (!k) return;
  const row = document.querySelector(k.sel);
  const e = row && [...row.querySelectorAll('button,select')].find((x) => x.className === k.cls);
  if (e) { if (e.tagName === 'SELECT' && k.value) e.value = k.value; const at = menuFocusAt; e.focus(); menuFocusAt = at; }
}

async function poll() {
  if (busy || !session) return;
  busy = true;
  try {
    const [stats, agents] = await Promise.all([api('stats'), api('agents')]);
    queueNames = stats.queues.map((q) => q.queue);
    const views = await Promise.all(stats.queues.map((q) => q.now.waiting > 0
      ? api('queues/' + encodeURIComponent(q.queue)).catch(() => null) : Promise.resolve(null)));
    const k = focusKey();
    // A menu just focused may be open: redrawing would close it under the pointer.
    const open = document.activeElement && document.activeElement.tagName === 'SELECT' && Date.now() - menuFocusAt < 8000;
    if (!open) {
      $('queues').replaceChildren(...stats.queues.map((q, i) => tile(q, views[i])));
      agentsTable(agents);
      restoreFocus(k);
    }
    $('conn').textContent = t('conn.polling') + ' · ' + clock(now());
    $('conn').className = 'conn ok';
  } catch (e) {
    $('conn').textContent = t('conn.lost');
    $('conn').className = 'conn lost';
  } finally { busy = false; }
}

async function pollSlow() {
  if (!sup()) return;
  try {
    const c = await api('complaints');
    show($('complaints-card'), true);
    $('complaints-summary').textContent = t('complaints.summary', c);
    const soon = (c.complaints || []).filter((x) => x.past_reply || x.past_resolve || (x.reply_due_at_ms - now()) < NEAR_DEADLINE_MS);
    const tbl = $('complaints');
    if (!soon.length) tbl.replaceChildren(el('caption', {}, t('complaints.none')));
    else tbl.replaceChildren(
      el('thead', {}, el('tr', {}, ['complaints.number', 'preview.name', 'complaints.when', 'complaints.reply_due', 'complaints.resolve_due'].map((k) => el('th', { scope: 'col' }, t(k))))),
      el('tbody', {}, soon.map((x) => el('tr', { class: x.past_reply || x.past_resolve ? 'late' : 'soon' },
        el('td', {}, x.number || '—'), el('td', {}, x.name || ''), el('td', {}, clock(x.complained_at_ms)),
        el('td', {}, clock(x.reply_due_at_ms)), el('td', {}, clock(x.resolve_due_at_ms))))));
  } catch (_) { show($('complaints-card'), false); }
  try {
    const r = await api('lists');
    show($('lists-card'), true);
    const tbl = $('lists');
    if (!r.lists.length) { tbl.replaceChildren(el('caption', {}, t('lists.none'))); return; }
    tbl.replaceChildren(
      el('thead', {}, el('tr', {}, ['lists.name', 'lists.state', 'lists.pending', 'agents.actions'].map((k) => el('th', { scope: 'col' }, t(k))))),
      el('tbody', {}, r.lists.map((l) => el('tr', { 'data-list': l.name },
        el('th', { scope: 'row' }, l.name), el('td', { 'data-state': l.state }, t('list.' + l.state)),
        el('td', {}, String((l.counters && l.counters.contacts && l.counters.contacts.pending) ?? 0)),
        el('td', {}, l.state === 'stopped' ? '' : el('button', { type: 'button', class: 'list-toggle', on: { click: () => listAct(l.name, l.state === 'active' ? 'pause' : 'resume') } },
          t(l.state === 'active' ? 'lists.pause' : 'lists.resume')))))));
  } catch (_) { show($('lists-card'), false); }
}

async function listAct(name, what) {
  try { await api('lists/' + encodeURIComponent(name) + '/' + what, { method: 'POST', body: {} }); notify(t('done')); pollSlow(); } catch (e) { failed(e); }
}

function ready(s) {
  show($('wallboard-note'), s.role === 'wallboard');
  for (const x of timers) clearInterval(x);
  timers = [setInterval(poll, POLL_MS), setInterval(pollSlow, SLOW_POLL_MS)];
  poll();
  pollSlow();
}

start({ onReady: ready, onOut: () => { for (const x of timers) clearInterval(x); timers = []; } });
