// The README's screenshot, docs/dashboard.png, from a running dashboard
// (make demo prints its address and read token):
//
//   node t/dashboard/screenshot.js URL READ_TOKEN FILE [en|zh]

'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '../../dashboard/node_modules/playwright-core'));

const [url, token, file, lang] = process.argv.slice(2);

(async () => {
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu']
    });
    try {
        const context = await browser.newContext({
            locale: lang === 'zh' ? 'zh-CN' : 'en-US',
            viewport: { width: 1280, height: 900 }
        });
        const page = await context.newPage();
        await page.goto(url);
        await page.fill('#token', token);
        await page.click('#login button[type=submit]');
        await page.waitForFunction(() => document.body.dataset.state !== 'loading'
                                         && document.body.dataset.state !== 'login');
        if (await page.evaluate(() => document.body.dataset.state) !== 'ready') {
            throw new Error(await page.textContent('#error'));
        }
        await page.screenshot({ path: file, fullPage: true });
    } finally {
        await browser.close();
    }
})().catch((e) => {
    console.error(e.message);
    process.exitCode = 1;
});
