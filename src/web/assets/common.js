// Shared by /agent and /board: the session, requests to /web/api/v1 with the CSRF token, the
// sign-in form, the language switch, time formatting in the center's time zone, DOM helpers.
// Text is always set with textContent (never innerHTML): nothing from the server is markup.
import { t, pickLanguage, setLanguage, language, translatePage, LANGS } from './i18n.js';

export { t };
export let session = null;
let skewMs = 0; // server clock minus browser clock

// The server's "now" in ms.
export function now() { return Date.now() + skewMs; }

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function request(url, opts = {}) {
  const headers = { 'Accept': 'application/json' };
  if (opts.method && opts.method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (session) headers['X-CSRF-Token'] = session.csrf;
  }
  const r = await fetch(url, {
    method: opts.method || 'GET', headers, credentials: 'same-origin',
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (!r.ok) {
    const e = (data && data.error) || {};
    if (r.status === 401 && session && url !== '/web/login') onSignedOut();
    throw new ApiError(r.status, e.code || 'http_' + r.status, e.message || r.statusText);
  }
  return data;
}

// A call to the API as the signed-in user: api('agents'), api('agents/1001/pause', {method: 'POST', body: {...}}).
export function api(path, opts) { return request('/web/api/v1/' + path, opts); }
export function web(path, opts) { return request('/web/' + path, opts); }

function adopt(s) {
  session = s;
  skewMs = s.server_now_ms - Date.now();
}

let signedOutHandler = () => {};
function onSignedOut() {
  session = null;
  signedOutHandler();
}

// DOM: el('td', {class: 'x'}, 'text', child...)
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
export const $ = (id) => document.getElementById(id);
export function show(e, on) { e.hidden = !on; }

// "1:05" / "1:02:03"
export function duration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs)) return '—';
  secs = Math.max(0, Math.floor(secs));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const p = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${p(m)}:${p(s)}` : `${m}:${p(s)}`;
}
export function percent(x) {
  return x === null || x === undefined ? '—' : (Math.round(x * 1000) / 10) + ' %';
}
function zone() { return (session && session.center.time_zone) || undefined; }
// A time of day (and the date when not today) in the center's time zone.
export function clock(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const opts = { timeZone: zone(), hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: zone() });
  if (day.format(d) !== day.format(new Date(now()))) {
    Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
  }
  try { return new Intl.DateTimeFormat(language(), opts).format(d); } catch (_) { return d.toISOString(); }
}

// Flash a message in the page's status line.
export function notify(text, kind) {
  const n = $('notice');
  n.textContent = text;
  n.className = 'notice ' + (kind || 'info');
  n.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { n.hidden = true; }, kind === 'error' ? 8000 : 4000);
}
export function failed(e) { notify(t('error', { message: e.message }), 'error'); }

// Wire the header (language select, sign-out) and the sign-in form; resolves once signed in.
// `onReady(session)` runs after each sign-in, `onOut()` after the session ends.
export async function start({ onReady, onOut }) {
  setLanguage(pickLanguage());
  translatePage();
  const sel = $('lang');
  for (const [code, name] of LANGS) sel.append(el('option', { value: code, selected: code === language() }, name));
  sel.addEventListener('change', () => {
    localStorage.setItem('ctid.lang', sel.value);
    setLanguage(sel.value);
    translatePage();
    if (session) onReady(session);
  });
  // Signed out (or the session ended): stop, then load the page afresh, so nothing the last
  // user saw (numbers, names, notes) stays in the page for the next one.
  signedOutHandler = () => { onOut(); show($('app'), false); sessionStorage.clear(); location.replace(location.pathname); };
  $('signout').addEventListener('click', async () => {
    try { await web('logout', { method: 'POST' }); } catch (_) { /* gone already */ }
    onSignedOut();
  });
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = $('login-token').value.trim();
    const u = $('login-user') ? $('login-user').value.trim() : '';
    const body = token ? { token } : { username: u, password: $('login-password').value };
    const msg = $('login-error');
    msg.textContent = '';
    try {
      const s = await web('login', { method: 'POST', body });
      $('login-form').reset();
      entered(s);
    } catch (e) {
      msg.textContent = e.status === 429 ? t('signin.throttled') : e.status === 401 ? t('signin.bad') : t('error', { message: e.message });
    }
  });
  const entered = (s) => {
    adopt(s);
    show($('login'), false);
    show($('app'), true);
    show($('signout'), true);
    $('who').textContent = (s.agent_name || s.agent || s.role) + (s.agent ? ` (${s.agent})` : '') + ' · ' + s.role;
    onReady(s);
  };
  try {
    entered(await web('session'));
  } catch (_) {
    show($('login'), true);
    const first = $('login-user') || $('login-token');
    first.focus();
  }
}
