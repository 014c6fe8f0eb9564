// t/dashboard.t's browser: Debian's chromium, headless, driven by
// playwright-core (dashboard/package-lock.json).
//
//   node t/dashboard/check.js URL READ_TOKEN OUTDIR
//
// URL is the dashboard's address.  Prints one JSON document: the checks
// made, [name, ok, diagnostic], for the Perl script to report.  The
// numbers the page shows are compared with what the statistics API says
// to the same token, asked here directly.

'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '../../dashboard/node_modules/playwright-core'));

const [url, token, outdir] = process.argv.slice(2);
const checks = [];

function check(name, ok, diag) {
    checks.push([name, !!ok, ok ? '' : String(diag === undefined ? '' : diag)]);
}

function same(name, got, want) {
    check(name, got === want,
          'got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want));
}

async function api(query) {
    const base = url.replace(/dashboard\/?$/, '');
    const res = await fetch(base + 'stats?' + query,
                            { headers: { Authorization: 'Bearer ' + token } });
    return res.json();
}

function fmt(n, locale) {
    return Number(n).toLocaleString(locale);
}

function money(n, locale) {
    return (Number(n) / 100).toLocaleString(locale, {
        minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

// a page that records what went wrong in it
async function open(browser, locale) {
    const context = await browser.newContext({ locale: locale,
                                               viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.errors = [];
    page.requests = [];
    page.on('console', (m) => {
        if (m.type() === 'error') {
            page.errors.push('console: ' + m.text());
        }
    });
    page.on('pageerror', (e) => page.errors.push('pageerror: ' + e.message));
    page.on('request', (r) => page.requests.push(r.url()));
    page.on('requestfailed', (r) => page.errors.push('failed: ' + r.url()));
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.state === 'login');
    return page;
}

async function login(page, value) {
    await page.fill('#token', value);
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => ['ready', 'login', 'error']
        .includes(document.body.dataset.state)
        && document.body.dataset.state !== 'loading'
        && (document.body.dataset.state !== 'login'
            || !document.getElementById('error').hidden));
}

// the rows of a table: { key: { field: data-v } }
async function tableValues(page, id, fields) {
    return page.$$eval('#' + id + ' tr[data-key]', (trs, fields) => {
        const out = {};
        for (const tr of trs) {
            const cells = tr.querySelectorAll('td');
            const row = {};
            fields.forEach((f, i) => {
                if (f) {
                    row[f] = { v: cells[i].dataset.v, text: cells[i].textContent };
                }
            });
            out[tr.dataset.key] = row;
        }
        return out;
    }, fields);
}

// every row of the API, and only those, in the page, value and text
async function compareRows(page, id, fields, rows, locale) {
    const shown = await tableValues(page, id, fields);
    same(id + ': the rows of the API', Object.keys(shown).sort().join(','),
         rows.map((r) => r.key).sort().join(','));

    for (const r of rows) {
        for (const f of fields) {
            if (!f || !shown[r.key]) {
                continue;
            }
            same(id + ' ' + r.key + ' ' + f, shown[r.key][f].v, String(r[f]));
            same(id + ' ' + r.key + ' ' + f + ' as shown', shown[r.key][f].text,
                 f === 'revenue' ? money(r[f], locale) : fmt(r[f], locale));
        }
    }
}

async function compare(page, locale) {
    const from = await page.textContent('#from');
    const to = await page.textContent('#to');
    const span = 'from=' + from + '&to=' + to;
    const days = await api('by=day&' + span + '&sort=key&top=30');
    const codes = await api('by=code&' + span + '&sort=revenue&top=10');
    const referrers = await api('by=referrer&' + span + '&sort=revenue&top=10');
    const campaigns = await api('by=campaign&' + span + '&sort=revenue&top=20');
    const funnel = await api('by=funnel&' + span);
    const cadence = await api('by=cadence&from=' + from);
    const conv = [null, 'clicks', 'signups', 'first_orders', 'orders', 'revenue'];

    for (const k of ['clicks', 'unique_clicks', 'bot_clicks', 'attributed',
                     'signups', 'first_orders', 'orders', 'revenue']) {
        const v = await page.getAttribute('#kpi-' + k + ' .value', 'data-v');
        const text = await page.textContent('#kpi-' + k + ' .value');
        same('kpi ' + k, v, String(days.totals[k]));
        same('kpi ' + k + ' as shown', text,
             k === 'revenue' ? money(days.totals[k], locale)
                             : fmt(days.totals[k], locale));
    }

    await compareRows(page, 'codes', [null, null].concat(conv.slice(1)),
                      codes.rows, locale);
    await compareRows(page, 'referrers', conv.concat(['points']),
                      referrers.rows.map((r) => Object.assign(
                          { points: r.points_l1 + r.points_l2 }, r)),
                      locale);
    await compareRows(page, 'campaigns', conv, campaigns.rows, locale);

    const stages = await tableValues(page, 'funnel', [null, 'n']);
    for (const s of ['prospect', 'fan', 'customer', 'member', 'partner']) {
        same('funnel ' + s, stages[s] && stages[s].n.v,
             String(funnel.stages[s]));
    }

    const staff = await tableValues(page, 'staff',
                                    [null, 'done', 'skipped', 'failed']);
    same('staff: the API\'s', Object.keys(staff).sort().join(','),
         Object.keys(cadence.staff).sort().join(','));
    for (const who of Object.keys(cadence.staff)) {
        for (const f of ['done', 'skipped', 'failed']) {
            same('staff ' + who + ' ' + f, staff[who] && staff[who][f].v,
                 String(cadence.staff[who][f]));
        }
    }

    // what the Perl script seeded, to tell the API's answer was not empty
    return { days, codes, referrers, campaigns, funnel, cadence };
}

(async () => {
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--font-render-hinting=none']
    });

    try {
        // English, from the browser's language
        const page = await open(browser, 'en-US');
        same('the page before a token: no data asked for',
             page.requests.filter((u) => /\/stats\?/.test(u)).length, 0);
        check('the page before a token: the login form',
              await page.isVisible('#login') && !(await page.isVisible('#board')));
        same('the language of an English browser',
             await page.getAttribute('html', 'lang'), 'en');

        await login(page, token);
        same('with the token: ready',
             await page.evaluate(() => document.body.dataset.state), 'ready');
        same('the token is kept in the tab',
             await page.evaluate(() => sessionStorage.getItem('loyalty.dashboard.token')),
             token);
        same('and nowhere else',
             await page.evaluate((tok) => (document.cookie + Object.keys(localStorage)
                                 .map((k) => localStorage.getItem(k)).join(''))
                                 .indexOf(tok), token), -1);
        const seen = await compare(page, 'en-US');
        await page.screenshot({ path: path.join(outdir, 'dashboard.png'), fullPage: true });

        // the switch
        await page.click('#lang');
        same('switched: lang', await page.getAttribute('html', 'lang'), 'zh-CN');
        same('switched: title', await page.textContent('h1'), '会员营销看板');
        same('switched: a KPI label', await page.textContent('#kpi-clicks .label'), '点击');
        same('switched: a column', await page.textContent('#codes th:nth-child(3)'), '点击');
        await compare(page, 'zh-CN');
        await page.screenshot({ path: path.join(outdir, 'dashboard-zh.png'), fullPage: true });
        await page.click('#lang');
        same('switched back', await page.textContent('h1'), 'Loyalty dashboard');

        same('no console error, no page error', page.errors.join('\n'), '');
        await page.context().close();

        // Chinese, from the browser's language; the choice is the browser's
        const zh = await open(browser, 'zh-CN');
        same('the language of a Chinese browser',
             await zh.getAttribute('html', 'lang'), 'zh-CN');
        same('its login text', await zh.textContent('#login button'), '打开');

        // a wrong token: refused, forgotten, the form again
        await login(zh, token + 'x');
        same('a wrong token: the form again',
             await zh.evaluate(() => document.body.dataset.state), 'login');
        same('the refusal said', await zh.textContent('#error'),
             '令牌被拒绝，请输入有效的管理令牌。');
        same('the wrong token is forgotten',
             await zh.evaluate(() => sessionStorage.getItem('loyalty.dashboard.token')),
             null);
        check('its only errors: the 401s',
              zh.errors.length > 0 && zh.errors.every((e) => /401/.test(e)),
              zh.errors.join('\n'));
        await zh.context().close();

        process.stdout.write(JSON.stringify({ checks, seen }) + '\n');
    } finally {
        await browser.close();
    }
})().catch((e) => {
    checks.push(['the browser script', false, e.stack || String(e)]);
    process.stdout.write(JSON.stringify({ checks }) + '\n');
    process.exitCode = 1;
});
