/*
 * nginx-loyalty: the dashboard's script.
 *
 * The token never leaves this tab: sessionStorage, and the Authorization
 * header of the requests to ADMIN/stats (no cookie, so no request can be
 * forged from another site).  Whatever the API answers is put in the page
 * as text, never as markup.  Labels in Chinese and English: the browser's
 * language chooses, the button switches, localStorage remembers.
 */

'use strict';

(function () {

var TOKEN_KEY = 'loyalty.dashboard.token';
var LANG_KEY = 'loyalty.dashboard.lang';
var STAGES = ['prospect', 'fan', 'customer', 'member', 'partner'];

var TEXT = {
    en: {
        title: 'Loyalty dashboard',
        range: 'Days',
        other_language: '中文',
        logout: 'Forget token',
        login_help: 'Enter an admin token (read scope is enough). '
                    + 'It is kept in this tab only.',
        open: 'Open',
        period: 'Period',
        funnel: 'Funnel',
        clicks_over_time: 'Clicks over time',
        top_codes: 'Top share codes',
        top_referrers: 'Top referrers',
        campaigns: 'Campaigns',
        staff_followups: 'Follow-ups by staff',
        cadences: 'Cadences',
        prospect: 'Prospects', fan: 'Fans', customer: 'Customers',
        member: 'Members', partner: 'Partners',
        stage: 'Stage', people: 'People',
        clicks: 'Clicks', unique_clicks: 'Unique clicks',
        bot_clicks: 'Bot clicks', attributed: 'Attributed visitors',
        signups: 'Signups', first_orders: 'First orders', orders: 'Orders',
        revenue: 'Revenue', refunds: 'Refunds', points: 'Points paid',
        code: 'Code', owner: 'Member', referrer: 'Referrer',
        campaign: 'Campaign', staff: 'Staff', cadence: 'Cadence',
        done: 'Done', skipped: 'Skipped', failed: 'Failed',
        pending: 'Pending', scheduled: 'Scheduled',
        total: 'Total', unique: 'Unique', bots: 'Bots',
        none: 'Nothing yet',
        bad_token: 'This token was refused. Enter a valid admin token.',
        failed_load: 'The statistics could not be read'
    },
    zh: {
        title: '会员营销看板',
        range: '天数',
        other_language: 'English',
        logout: '清除令牌',
        login_help: '请输入管理令牌（只读权限即可），仅保存在当前标签页。',
        open: '打开',
        period: '统计区间',
        funnel: '转化漏斗',
        clicks_over_time: '点击趋势',
        top_codes: '分享码排行',
        top_referrers: '推荐人排行',
        campaigns: '活动',
        staff_followups: '员工跟进',
        cadences: '跟进计划',
        prospect: '潜客', fan: '粉丝', customer: '顾客',
        member: '会员', partner: '合伙人',
        stage: '阶段', people: '人数',
        clicks: '点击', unique_clicks: '独立点击',
        bot_clicks: '机器人点击', attributed: '归因访客',
        signups: '注册', first_orders: '首单', orders: '订单',
        revenue: '销售额', refunds: '退款', points: '奖励积分',
        code: '分享码', owner: '会员', referrer: '推荐人',
        campaign: '活动', staff: '员工', cadence: '计划',
        done: '已完成', skipped: '已跳过', failed: '失败',
        pending: '待处理', scheduled: '已安排',
        total: '总点击', unique: '独立', bots: '机器人',
        none: '暂无数据',
        bad_token: '令牌被拒绝，请输入有效的管理令牌。',
        failed_load: '无法读取统计数据'
    }
};

var lang = chooseLanguage();
var data = null;
var charts = {};

function $(id) {
    return document.getElementById(id);
}

function chooseLanguage() {
    var saved = localStorage.getItem(LANG_KEY);
    var langs = navigator.languages || [navigator.language || 'en'];

    if (saved === 'zh' || saved === 'en') {
        return saved;
    }

    return /^zh\b/i.test(langs[0] || '') ? 'zh' : 'en';
}

function t(key) {
    return TEXT[lang][key] || key;
}

function locale() {
    return lang === 'zh' ? 'zh-CN' : 'en-US';
}

function fmt(n) {
    return Number(n).toLocaleString(locale());
}

/* amounts are minor units: fen, cents */
function money(n) {
    return (Number(n) / 100).toLocaleString(locale(), {
        minimumFractionDigits: 2,
        maximumFractionDigits: 2
    });
}

function setState(state) {
    document.body.dataset.state = state;
}

function showError(text) {
    var e = $('error');
    e.textContent = text;
    e.hidden = !text;
}

function translate() {
    var nodes = document.querySelectorAll('[data-i18n]');
    var i;

    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');

    for (i = 0; i < nodes.length; i++) {
        nodes[i].textContent = t(nodes[i].dataset.i18n);
    }
}


/* the days of the range, UTC as the store counts them */
function day(d) {
    return d.toISOString().slice(0, 10);
}

function range() {
    var n = Number($('range').value);
    var to = new Date();
    var from = new Date(to.getTime() - (n - 1) * 86400000);
    return { from: day(from), to: day(to), days: n };
}


/* the statistics API, next to this page: ADMIN/stats */
function apiBase() {
    return location.pathname.replace(/dashboard\/?$/, '');
}

function api(query) {
    var token = sessionStorage.getItem(TOKEN_KEY);

    return fetch(apiBase() + 'stats?' + query, {
        headers: { Authorization: 'Bearer ' + token },
        cache: 'no-store',
        credentials: 'omit'
    }).then(function (res) {
        if (res.status === 401 || res.status === 403) {
            var e = new Error(t('bad_token'));
            e.auth = true;
            throw e;
        }

        return res.json().then(function (doc) {
            if (!res.ok) {
                throw new Error(t('failed_load') + ': ' + res.status + ' '
                                + (doc && doc.error ? doc.error : ''));
            }
            return doc;
        });
    });
}

function load() {
    var r = range();
    var span = 'from=' + r.from + '&to=' + r.to;

    setState('loading');
    showError('');

    return Promise.all([
        api('by=day&' + span + '&sort=key&top=' + r.days),
        api('by=code&' + span + '&sort=revenue&top=10'),
        api('by=referrer&' + span + '&sort=revenue&top=10'),
        api('by=campaign&' + span + '&sort=revenue&top=20'),
        api('by=funnel&' + span),
        api('by=cadence&from=' + r.from)
    ]).then(function (docs) {
        data = {
            range: r, days: docs[0], codes: docs[1], referrers: docs[2],
            campaigns: docs[3], funnel: docs[4], cadence: docs[5]
        };
        render();
        setState('ready');

    }, function (e) {
        if (e.auth) {
            sessionStorage.removeItem(TOKEN_KEY);
            showLogin();
        } else {
            setState('error');
        }
        showError(e.message);
    });
}


/* tables: every number cell keeps its value in data-v */
function cell(tr, text, value, numeric) {
    var td = document.createElement('td');
    td.textContent = text;
    if (numeric) {
        td.className = 'n';
        td.dataset.v = String(value);
    }
    tr.appendChild(td);
}

function table(id, columns, rows) {
    var el = $(id);
    var head = document.createElement('tr');
    var i, j, tr, c, v;

    el.textContent = '';

    for (i = 0; i < columns.length; i++) {
        c = document.createElement('th');
        c.textContent = t(columns[i].label);
        if (columns[i].num) {
            c.className = 'n';
        }
        head.appendChild(c);
    }
    el.appendChild(head);

    if (rows.length === 0) {
        tr = document.createElement('tr');
        c = document.createElement('td');
        c.className = 'empty';
        c.colSpan = columns.length;
        c.textContent = t('none');
        tr.appendChild(c);
        el.appendChild(tr);
        return;
    }

    for (j = 0; j < rows.length; j++) {
        tr = document.createElement('tr');
        tr.dataset.key = rows[j].key;

        for (i = 0; i < columns.length; i++) {
            c = columns[i];
            v = rows[j][c.field];

            if (!c.num) {
                cell(tr, v === undefined ? '' : String(v), v, false);
            } else {
                cell(tr, c.money ? money(v) : fmt(v), v, true);
            }
        }
        el.appendChild(tr);
    }
}

var CONVERSIONS = [
    { label: 'clicks', field: 'clicks', num: true },
    { label: 'signups', field: 'signups', num: true },
    { label: 'first_orders', field: 'first_orders', num: true },
    { label: 'orders', field: 'orders', num: true },
    { label: 'revenue', field: 'revenue', num: true, money: true }
];

function objectRows(obj, fields) {
    return Object.keys(obj || {}).sort().map(function (k) {
        var row = { key: k, name: k };
        fields.forEach(function (f) { row[f] = obj[k][f]; });
        return row;
    });
}

function renderKpis() {
    var el = $('kpis');
    var totals = data.days.totals;
    var keys = ['clicks', 'unique_clicks', 'bot_clicks', 'attributed',
                'signups', 'first_orders', 'orders', 'revenue'];

    el.textContent = '';

    keys.forEach(function (k) {
        var box = document.createElement('div');
        var label = document.createElement('div');
        var value = document.createElement('div');

        box.className = 'kpi';
        box.id = 'kpi-' + k;
        label.className = 'label';
        label.textContent = t(k);
        value.className = 'value';
        value.dataset.v = String(totals[k]);
        value.textContent = k === 'revenue' ? money(totals[k]) : fmt(totals[k]);
        box.appendChild(label);
        box.appendChild(value);
        el.appendChild(box);
    });
}

function renderTables() {
    var codeRows = data.codes.rows.map(function (r) {
        return Object.assign({ owner: r.member || '' }, r);
    });

    table('codes', [{ label: 'code', field: 'key' },
                    { label: 'owner', field: 'owner' }].concat(CONVERSIONS),
          codeRows);
    /* what the referrer earned: for the people they brought, and for those
       people's referrals */
    table('referrers', [{ label: 'referrer', field: 'key' }]
                       .concat(CONVERSIONS)
                       .concat([{ label: 'points', field: 'points',
                                  num: true }]),
          data.referrers.rows.map(function (r) {
              return Object.assign({ points: r.points_l1 + r.points_l2 }, r);
          }));
    table('campaigns', [{ label: 'campaign', field: 'key' }]
                       .concat(CONVERSIONS), data.campaigns.rows);

    table('funnel', [{ label: 'stage', field: 'name' },
                     { label: 'people', field: 'n', num: true }],
          STAGES.map(function (s) {
              return { key: s, name: t(s), n: data.funnel.stages[s] };
          }));

    table('staff', [{ label: 'staff', field: 'name' },
                    { label: 'done', field: 'done', num: true },
                    { label: 'skipped', field: 'skipped', num: true },
                    { label: 'failed', field: 'failed', num: true }],
          objectRows(data.cadence.staff, ['done', 'skipped', 'failed']));

    table('cadences', [{ label: 'cadence', field: 'name' },
                       { label: 'scheduled', field: 'scheduled', num: true },
                       { label: 'done', field: 'done', num: true },
                       { label: 'skipped', field: 'skipped', num: true },
                       { label: 'failed', field: 'failed', num: true },
                       { label: 'pending', field: 'pending', num: true }],
          objectRows(data.cadence.cadences,
                     ['scheduled', 'done', 'skipped', 'failed', 'pending']));
}


function chart(id) {
    if (!charts[id]) {
        charts[id] = echarts.init($(id), null, { renderer: 'canvas' });
    }
    return charts[id];
}

/* every day of the range, with the days the API has no row for */
function daySeries() {
    var byDay = {};
    var out = { days: [], clicks: [], unique: [], bots: [] };
    var start = new Date(data.range.from + 'T00:00:00Z').getTime();
    var i, d, r;

    data.days.rows.forEach(function (row) { byDay[row.key] = row; });

    for (i = 0; i < data.range.days; i++) {
        d = day(new Date(start + i * 86400000));
        r = byDay[d] || {};
        out.days.push(d.slice(5));
        out.clicks.push(r.clicks || 0);
        out.unique.push(r.unique_clicks || 0);
        out.bots.push(r.bot_clicks || 0);
    }

    return out;
}

function renderCharts() {
    var s = daySeries();

    chart('funnel-chart').setOption({
        animation: false,
        tooltip: { trigger: 'item' },
        series: [{
            type: 'funnel',
            sort: 'none',
            minSize: '8%',
            label: { formatter: '{b}: {c}' },
            data: STAGES.map(function (st) {
                return { name: t(st), value: data.funnel.stages[st] };
            })
        }]
    }, true);

    chart('clicks-chart').setOption({
        animation: false,
        tooltip: { trigger: 'axis' },
        legend: { top: 0, data: [t('total'), t('unique'), t('bots')] },
        grid: { left: 40, right: 16, top: 36, bottom: 24 },
        xAxis: { type: 'category', data: s.days },
        yAxis: { type: 'value', minInterval: 1 },
        series: [
            { name: t('total'), type: 'line', data: s.clicks },
            { name: t('unique'), type: 'line', data: s.unique },
            { name: t('bots'), type: 'line', data: s.bots }
        ]
    }, true);

    chart('campaigns-chart').setOption({
        animation: false,
        tooltip: { trigger: 'axis' },
        legend: { top: 0, data: [t('signups'), t('orders')] },
        grid: { left: 40, right: 16, top: 36, bottom: 24 },
        xAxis: { type: 'category',
                 data: data.campaigns.rows.map(function (r) { return r.key; }) },
        yAxis: { type: 'value', minInterval: 1 },
        series: [
            { name: t('signups'), type: 'bar',
              data: data.campaigns.rows.map(function (r) { return r.signups; }) },
            { name: t('orders'), type: 'bar',
              data: data.campaigns.rows.map(function (r) { return r.orders; }) }
        ]
    }, true);
}

function render() {
    $('from').textContent = data.range.from;
    $('to').textContent = data.range.to;
    $('login').hidden = true;
    $('board').hidden = false;
    $('logout').hidden = false;

    renderKpis();
    renderTables();
    renderCharts();
}


function showLogin() {
    $('board').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('token').value = '';
    $('token').focus();
    setState('login');
}

function start() {
    translate();

    $('lang').addEventListener('click', function () {
        lang = lang === 'zh' ? 'en' : 'zh';
        localStorage.setItem(LANG_KEY, lang);
        translate();
        if (data) {
            render();
        }
    });

    $('range').addEventListener('change', function () {
        if (sessionStorage.getItem(TOKEN_KEY)) {
            load();
        }
    });

    $('logout').addEventListener('click', function () {
        sessionStorage.removeItem(TOKEN_KEY);
        data = null;
        showLogin();
    });

    $('login').addEventListener('submit', function (ev) {
        var token = $('token').value.trim();

        ev.preventDefault();
        if (token) {
            sessionStorage.setItem(TOKEN_KEY, token);
            load();
        }
    });

    window.addEventListener('resize', function () {
        Object.keys(charts).forEach(function (k) { charts[k].resize(); });
    });

    if (sessionStorage.getItem(TOKEN_KEY)) {
        load();
    } else {
        showLogin();
    }
}

document.addEventListener('DOMContentLoaded', start);

})();
