// Strings of the pages in English and Chinese (zh-CN). The language is the page's setting
// (kept in localStorage), else the server's pick from Accept-Language (<html lang>), else
// navigator.language.
const STRINGS = {
  en: {
    'agent.title': 'Agent desktop', 'board.title': 'Supervisor board',
    'signin.title': 'Sign in', 'signin.username': 'Username (SIP)', 'signin.password': 'Password',
    'signin.or': 'or an API token', 'signin.token': 'Token', 'signin.submit': 'Sign in',
    'signin.bad': 'Wrong credentials.', 'signin.throttled': 'Too many failed sign-ins: wait a few minutes.',
    'signout': 'Sign out', 'language': 'Language',
    'conn.live': 'Live', 'conn.lost': 'Connection lost: reconnecting…', 'conn.polling': 'Updated every 2 s',
    'state.title': 'My state', 'state.logged_out': 'Logged out', 'state.available': 'Ready',
    'state.ringing': 'Ringing', 'state.on_call': 'On a call', 'state.wrapup': 'Wrap-up', 'state.paused': 'Paused',
    'state.for': 'for', 'state.pending': 'Pause after this call: {reason}', 'state.phone_off': 'Phone not registered',
    'btn.ready': 'Ready', 'btn.pause': 'Pause', 'btn.logout': 'Log out of queues', 'pause.reason': 'Reason',
    'call.title': 'Current call', 'call.none': 'No call right now.', 'call.number': 'Caller',
    'call.name': 'Name', 'call.queue': 'Queue', 'call.wait': 'Waited', 'call.talk': 'Talking',
    'call.incoming': 'Incoming call', 'call.ended': 'Call ended',
    'history.title': 'Your previous calls with this number', 'history.none': 'No previous calls.',
    'history.when': 'When', 'history.outcome': 'Outcome', 'history.talk': 'Talk', 'history.disposition': 'Disposition', 'history.notes': 'Notes',
    'wrapup.title': 'Wrap-up', 'wrapup.call': 'Call {call} from {number}', 'wrapup.code': 'Outcome',
    'wrapup.notes': 'Notes', 'wrapup.save': 'Save outcome', 'wrapup.saved': 'Outcome saved.', 'wrapup.end': 'End wrap-up',
    'preview.title': 'Preview call', 'preview.list': 'List', 'preview.number': 'Number', 'preview.name': 'Customer',
    'preview.attempts': 'Attempts so far', 'preview.left': 'Time left', 'preview.accept': 'Call now', 'preview.skip': 'Skip',
    'figures.title': 'My day', 'figures.answered': 'Answered', 'figures.aht': 'Average handling', 'figures.talk': 'Talk time',
    'figures.logged_in': 'Logged in', 'figures.survey': 'Survey score', 'figures.paused': 'Paused', 'figures.occupancy': 'Occupancy',
    'queues.title': 'Queues', 'q.waiting': 'Waiting', 'q.longest': 'Longest wait', 'q.sl_today': 'SL today',
    'q.sl_interval': 'SL this interval', 'q.answer_rate': 'Answer rate', 'q.goal': 'goal {goal} in {secs} s',
    'q.agents': 'Agents', 'q.callers': 'Waiting callers', 'q.none_waiting': 'Nobody waiting.',
    'q.from': 'from {time}', 'q.position': '#', 'q.to_front': 'To front', 'q.move_to': 'Move to', 'q.move': 'Move', 'q.target': 'target {goal}',
    'agents.title': 'Agents', 'agents.agent': 'Agent', 'agents.state': 'State', 'agents.reason': 'Reason',
    'agents.call': 'Call', 'agents.time': 'Time in state', 'agents.answered': 'Answered', 'agents.actions': 'Actions',
    'agents.force_pause': 'Pause', 'agents.force_logout': 'Log out',
    'complaints.title': 'Open complaints near their deadline', 'complaints.none': 'No complaint near its deadline.',
    'complaints.summary': '{open} open · {past_reply} past reply · {past_resolve} past resolve',
    'complaints.number': 'Number', 'complaints.when': 'Complained', 'complaints.reply_due': 'Reply due', 'complaints.resolve_due': 'Resolve due',
    'lists.title': 'Callback lists', 'lists.none': 'No callback lists.', 'lists.name': 'List', 'lists.state': 'State',
    'lists.pending': 'Pending', 'list.active': 'active', 'list.paused': 'paused', 'list.stopped': 'stopped', 'lists.pause': 'Pause', 'lists.resume': 'Resume',
    'done': 'Done.', 'error': 'Error: {message}', 'hidden': 'hidden',
    'role.wallboard': 'Wallboard view: no customer data.',
  },
  'zh-CN': {
    'agent.title': '坐席工作台', 'board.title': '班长监控台',
    'signin.title': '登录', 'signin.username': '用户名（SIP）', 'signin.password': '密码',
    'signin.or': '或使用 API 令牌', 'signin.token': '令牌', 'signin.submit': '登录',
    'signin.bad': '凭据错误。', 'signin.throttled': '登录失败次数过多，请几分钟后再试。',
    'signout': '退出登录', 'language': '语言',
    'conn.live': '实时', 'conn.lost': '连接中断，正在重连…', 'conn.polling': '每 2 秒刷新',
    'state.title': '我的状态', 'state.logged_out': '已签出', 'state.available': '就绪',
    'state.ringing': '振铃中', 'state.on_call': '通话中', 'state.wrapup': '话后处理', 'state.paused': '小休',
    'state.for': '已持续', 'state.pending': '本次通话后小休：{reason}', 'state.phone_off': '话机未注册',
    'btn.ready': '就绪', 'btn.pause': '小休', 'btn.logout': '签出队列', 'pause.reason': '原因',
    'call.title': '当前通话', 'call.none': '当前没有通话。', 'call.number': '来电号码',
    'call.name': '姓名', 'call.queue': '队列', 'call.wait': '等待时长', 'call.talk': '通话时长',
    'call.incoming': '来电', 'call.ended': '通话已结束',
    'history.title': '您与该号码的历史通话', 'history.none': '没有历史通话。',
    'history.when': '时间', 'history.outcome': '结果', 'history.talk': '通话', 'history.disposition': '处理结果', 'history.notes': '备注',
    'wrapup.title': '话后处理', 'wrapup.call': '通话 {call}，来自 {number}', 'wrapup.code': '处理结果',
    'wrapup.notes': '备注', 'wrapup.save': '保存结果', 'wrapup.saved': '已保存。', 'wrapup.end': '结束话后处理',
    'preview.title': '预览外呼', 'preview.list': '名单', 'preview.number': '号码', 'preview.name': '客户',
    'preview.attempts': '已尝试次数', 'preview.left': '剩余时间', 'preview.accept': '立即呼叫', 'preview.skip': '跳过',
    'figures.title': '今日数据', 'figures.answered': '接听数', 'figures.aht': '平均处理时长', 'figures.talk': '通话时长',
    'figures.logged_in': '在线时长', 'figures.survey': '满意度评分', 'figures.paused': '小休时长', 'figures.occupancy': '占用率',
    'queues.title': '队列', 'q.waiting': '排队', 'q.longest': '最长等待', 'q.sl_today': '今日服务水平',
    'q.sl_interval': '本时段服务水平', 'q.answer_rate': '接通率', 'q.goal': '目标 {goal}（{secs} 秒内）',
    'q.agents': '坐席', 'q.callers': '排队来电', 'q.none_waiting': '无人排队。',
    'q.from': '自 {time} 起', 'q.position': '#', 'q.to_front': '移到队首', 'q.move_to': '转到', 'q.move': '转移', 'q.target': '目标 {goal}',
    'agents.title': '坐席', 'agents.agent': '坐席', 'agents.state': '状态', 'agents.reason': '原因',
    'agents.call': '通话', 'agents.time': '状态时长', 'agents.answered': '接听', 'agents.actions': '操作',
    'agents.force_pause': '强制小休', 'agents.force_logout': '强制签出',
    'complaints.title': '临近期限的未结投诉', 'complaints.none': '没有临近期限的投诉。',
    'complaints.summary': '未结 {open} · 超回复期 {past_reply} · 超解决期 {past_resolve}',
    'complaints.number': '号码', 'complaints.when': '投诉时间', 'complaints.reply_due': '回复期限', 'complaints.resolve_due': '解决期限',
    'lists.title': '回访名单', 'lists.none': '没有回访名单。', 'lists.name': '名单', 'lists.state': '状态',
    'lists.pending': '待拨', 'list.active': '进行中', 'list.paused': '已暂停', 'list.stopped': '已停止', 'lists.pause': '暂停', 'lists.resume': '恢复',
    'done': '完成。', 'error': '错误：{message}', 'hidden': '已隐藏',
    'role.wallboard': '大屏视图：不显示客户数据。',
  },
};

export const LANGS = [['en', 'English'], ['zh-CN', '中文']];

export function pickLanguage() {
  const saved = localStorage.getItem('ctid.lang');
  if (saved && STRINGS[saved]) return saved;
  const server = document.documentElement.lang;
  if (STRINGS[server] && server !== 'en') return server;
  const nav = (navigator.languages || [navigator.language || 'en']);
  for (const l of nav) {
    if (l.toLowerCase().startsWith('zh')) return 'zh-CN';
    if (l.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

let lang = 'en';
export function setLanguage(l) {
  lang = STRINGS[l] ? l : 'en';
  document.documentElement.lang = lang;
}
export function language() { return lang; }

export function t(key, vars) {
  let s = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
  return s;
}

// Fill every [data-i18n] element's text (and [data-i18n-label] aria-labels).
export function translatePage() {
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-label]')) e.setAttribute('aria-label', t(e.dataset.i18nLabel));
}
