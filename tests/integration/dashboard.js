/*
 * dashboard.js - drive the dashboard of a running sheafd in headless
 * Chromium (puppeteer-core, Debian's /usr/bin/chromium) for
 * test_dashboard.py, and print what the pages showed as one JSON object.
 *
 *   node dashboard.js CONFIG.json
 *
 * CONFIG: {"url": "http://127.0.0.1:PORT", "out": DIR, "chromium": PATH,
 *          "filter": NAME_PART, "watch": ID, "cancel": ID, "report": ID}
 *   watch   a job queued behind 'cancel': its page is opened first and
 *           followed until it succeeds
 *   cancel  a running job: opened in a second tab and cancelled there
 *   report  a finished naive Bayes job: its report table is read
 * With "token": T (a service with tokens on) it runs the token walk
 * instead: the page asks for the token, keeps it for the tab, lists and
 * opens "watch" (a finished job) and downloads its result with the
 * token into DIR/downloads.
 *
 * Screenshots go to DIR/*.png. Console errors, page errors, failed requests
 * and replies >= 400 are collected in "problems" (the one reply expected to
 * fail is the event stream's 501 while the service has none). The test
 * asserts on the JSON; this script exits non-zero only when it could not
 * run at all.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { createRequire } = require('module');

const ROOT = path.resolve(__dirname, '..', '..');
const puppeteer = createRequire(
    path.join(ROOT, 'tools', 'browser', 'package.json'))('puppeteer-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const STEP_MS = 120000; /* a step that waits longer has hung */

/* A made-up event stream: a comment, an event with data on two lines, one
 * with CRLF line ends and no space after the colons. */
const SSE_BODY = ': hello\n\n' +
    'id: e1\nevent: progress\ndata: {"status": "running"}\n\n' +
    'id: e2\nevent: progress\ndata: {"status":\ndata:  "running"}\n\n' +
    'id:e3\r\nevent:progress\r\ndata:{"status":"running"}\r\n\r\n';

/* Set while the token walk waits for the page to ask for a token. */
let tokenAsked = false;

/* A reply that may fail: the event stream, until the service has one;
 * the first listing of the token walk, before the token is entered. */
function expectedFailure(url, status) {
    const p = new URL(url).pathname;
    return (status === 501 && /^\/v1\/jobs\/[^/]+\/events$/.test(p))
        || (status === 401 && tokenAsked && p === '/v1/jobs');
}

function watchPage(page, tag, problems) {
    page.on('console', (msg) => {
        if (msg.type() !== 'error')
            return;
        const loc = msg.location() || {};
        /* Chromium logs each reply >= 400 as a console error too. */
        const st = /status of (\d+)/.exec(msg.text());
        if (loc.url && st && expectedFailure(loc.url, Number(st[1])))
            return;
        problems.push(`${tag}: console error: ${msg.text()} ` +
                      `(${loc.url || ''})`);
    });
    page.on('pageerror', (err) => problems.push(
        `${tag}: page error: ${err.message}`));
    page.on('requestfailed', (req) => {
        const why = (req.failure() || {}).errorText || '';
        /* The page aborts its own long polls and streams when it moves
         * to another view. */
        if (why === 'net::ERR_ABORTED'
            && ['fetch', 'xhr'].includes(req.resourceType()))
            return;
        problems.push(`${tag}: request failed: ${req.method()} ` +
                      `${req.url()}: ${why}`);
    });
    page.on('response', (resp) => {
        if (resp.status() >= 400
            && !expectedFailure(resp.url(), resp.status()))
            problems.push(`${tag}: ${resp.status()} for ` +
                          `${resp.request().method()} ${resp.url()}`);
    });
}

async function shot(page, name, shots) {
    const file = path.join(cfg.out, name + '.png');
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
}

/* The state, progress and facts a job's page shows. */
function jobView(page) {
    return page.evaluate(() => {
        const q = (s) => document.querySelector(s);
        const bar = q('#job-progress');
        return {
            name: q('#job-name') && q('#job-name').textContent,
            status: q('#job-status') && q('#job-status').dataset.status,
            value: bar ? bar.value : null,
            max: bar ? bar.max : null,
            text: q('#job-progress-text') && q('#job-progress-text')
                .textContent,
            live: q('#live') && q('#live').textContent,
            settled: q('#view').dataset.settled || null,
            stages: document.querySelectorAll('#stages tr.stage').length,
            bars: document.querySelectorAll('#timeline .tl-bar').length,
            tasks: document.querySelectorAll('#tasks tr.task').length,
        };
    });
}

/* The token walk (see the head of the file). */
async function tokenWalk(browser, out) {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    watchPage(page, 'token', out.problems);
    tokenAsked = true;
    await page.goto(cfg.url + '/', { waitUntil: 'load' });
    await page.waitForSelector('#token-box:not([hidden])');
    out.asked = await page.$eval('#token-msg', (e) => e.textContent);
    await shot(page, '1-token-asked', out.shots);
    await page.type('#token-input', cfg.token);
    await page.click('#token-save');
    await page.waitForSelector('#view[data-loaded]');
    tokenAsked = false;
    out.stored = await page.evaluate(() =>
        sessionStorage.getItem('sheaf.token'));
    await page.waitForSelector(`#jobs tr.job[data-id="${cfg.watch}"]`);
    /* Entered once: a reload lists the jobs without asking again. */
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector(`#jobs tr.job[data-id="${cfg.watch}"]`);
    out.asked_again = await page.$eval('#token-box', (e) => !e.hidden);
    await page.click(`#jobs tr.job[data-id="${cfg.watch}"] a.job-link`);
    await page.waitForSelector('#result-link');
    out.status = await page.$eval('#job-status', (e) => e.dataset.status);
    const dir = path.join(cfg.out, 'downloads');
    fs.mkdirSync(dir, { recursive: true });
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior',
                   { behavior: 'allow', downloadPath: dir });
    await page.click('#result-link');
    const file = path.join(dir, 'result.csv');
    for (let i = 0; i < 600 && !fs.existsSync(file); i++)
        await new Promise((r) => setTimeout(r, 100));
    out.download = fs.existsSync(file) ? file : null;
    await shot(page, '2-token-job', out.shots);
}

async function main() {
    const out = { problems: [], shots: [] };
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sheaf-chromium-'));
    const browser = await puppeteer.launch({
        executablePath: cfg.chromium || '/usr/bin/chromium',
        headless: true,
        userDataDir: profile,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync',
               '--disable-dev-shm-usage', '--window-size=1280,900'],
        defaultViewport: { width: 1280, height: 900 },
        protocolTimeout: STEP_MS,
    });
    try {
        if (cfg.token)
            await tokenWalk(browser, out);
        else
            await mainWalk(browser, out);
    } catch (e) {
        out.error = String(e && e.stack || e);
    } finally {
        await browser.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
    process.stdout.write(JSON.stringify(out) + '\n');
}

/* The main walk (see the head of the file). */
async function mainWalk(browser, out) {
    const problems = out.problems;
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    watchPage(page, 'main', problems);

    /* 1. The list, filtered down to this test's jobs. */
    const resp = await page.goto(cfg.url + '/', { waitUntil: 'load' });
    out.index = { status: resp.status(),
                  csp: resp.headers()['content-security-policy'] || '' };
    await page.waitForSelector('#view[data-loaded]');
    await page.type('#filter-name', cfg.filter);
    await page.waitForFunction((ids) => ids.every((id) =>
        document.querySelector(`#jobs tr.job[data-id="${id}"]`)),
        {}, [cfg.watch, cfg.cancel, cfg.report]);
    out.list = await page.$$eval('#jobs tr.job', (rows) => rows.map(
        (tr) => ({ id: tr.dataset.id, status: tr.dataset.status,
                   name: tr.querySelector('.job-link').textContent,
                   count: tr.querySelector('.count').textContent })));
    out.count = await page.$eval('#job-count', (e) => e.textContent);
    /* The state filter asks the API again. */
    await page.select('#filter-status', 'succeeded');
    await page.waitForFunction((id) =>
        document.querySelector(`#jobs tr.job[data-id="${id}"]`)
        && [...document.querySelectorAll('#jobs tr.job')].every(
            (tr) => tr.dataset.status === 'succeeded'), {}, cfg.report);
    out.list_succeeded = await page.$$eval('#jobs tr.job',
        (rows) => rows.map((tr) => tr.dataset.id));
    await page.select('#filter-status', '');
    await page.waitForFunction((id) => document.querySelector(
        `#jobs tr.job[data-id="${id}"]`), {}, cfg.cancel);
    await shot(page, '1-list', out.shots);

    /* 2. The job to watch: open it from the list; it waits behind the
     * one to cancel. */
    await page.click(`#jobs tr.job[data-id="${cfg.watch}"] a.job-link`);
    await page.waitForSelector('#job-status[data-status]');
    out.watch_first = await jobView(page);
    await shot(page, '2-job-waiting', out.shots);

    /* 3. The running job, in a second tab: see it progress, cancel. */
    const other = await browser.newPage();
    other.setDefaultTimeout(STEP_MS);
    watchPage(other, 'cancel-tab', problems);
    /* This tab gets an event stream: a made-up one, for the page's parser
     * (the service answers 501 until it has one). Each request's
     * Last-Event-ID is noted. */
    out.sse_requests = [];
    await other.setRequestInterception(true);
    other.on('request', (req) => {
        if (!/\/v1\/jobs\/[^/]+\/events$/.test(new URL(req.url()).pathname))
            return req.continue();
        out.sse_requests.push(req.headers()['last-event-id'] || null);
        return req.respond({ status: 200, contentType: 'text/event-stream',
                             body: SSE_BODY });
    });
    await other.goto(`${cfg.url}/#/jobs/${cfg.cancel}`,
                     { waitUntil: 'load' });
    await other.waitForSelector('#job-status[data-status="running"]');
    const before = await jobView(other);
    await other.waitForFunction((v) => document.querySelector(
        '#job-progress').value > v, {}, before.value);
    out.cancel_running = [before, await jobView(other)];
    await other.waitForFunction(() => document.querySelectorAll(
        '#timeline .tl-bar').length > 0);
    await other.waitForFunction(() => document.querySelector('#live')
        .dataset.lastId === 'e3');
    out.sse = await other.$eval('#live', (e) => ({
        events: Number(e.dataset.events), lastId: e.dataset.lastId }));
    /* The stream ended: the page opens it again, from the last id. */
    for (let i = 0; i < STEP_MS / 100 && out.sse_requests.length < 2; i++)
        await new Promise((r) => setTimeout(r, 100));
    await shot(other, '3-job-running', out.shots);
    await other.click('#cancel');
    await other.waitForSelector('#view[data-settled]');
    out.cancel_after = await jobView(other);
    await shot(other, '4-job-cancelled', out.shots);
    await other.close();

    /* 4. Back to the watched job: it runs now; follow it to the end,
     * noting each state and progress value the page shows. */
    await page.bringToFront();
    out.watch_seen = [];
    for (;;) {
        const v = await jobView(page);
        const last = out.watch_seen[out.watch_seen.length - 1];
        if (!last || last.status !== v.status || last.value !== v.value)
            out.watch_seen.push(v);
        if (v.settled)
            break;
        await page.waitForFunction((s, val) => {
            const b = document.querySelector('#job-progress');
            return document.querySelector('#view').dataset.settled
                || document.querySelector('#job-status').dataset.status
                    !== s || b.value !== val;
        }, { polling: 50 }, v.status, v.value);
    }
    await page.waitForSelector('#result-link');
    /* The task table is made when opened. */
    await page.click('#tasks-details summary');
    await page.waitForSelector('#tasks tr.task');
    out.watch_final = await jobView(page);
    out.result_href = await page.$eval('#result-link',
                                       (a) => a.getAttribute('href'));
    out.preview_rows = await page.$$eval('#preview tbody tr',
                                         (rows) => rows.length);
    await shot(page, '5-job-succeeded', out.shots);

    /* 5. Follow the result link: its bytes as the browser gets them. */
    out.result_text = await page.evaluate(async (href) => {
        const r = await fetch(href);
        return r.ok ? await r.text() : `HTTP ${r.status}`;
    }, out.result_href);

    /* 6. The naive Bayes job: its report table. */
    await page.goto(`${cfg.url}/#/jobs/${cfg.report}`);
    await page.waitForSelector('#report-confusion');
    out.report = await page.evaluate(() => ({
        accuracy: document.querySelector('#report-accuracy').textContent,
        classes: [...document.querySelectorAll(
            '#report-classes tr.class-row td:first-child')].map(
            (td) => td.textContent),
        confusion_rows: document.querySelectorAll(
            '#report-confusion tbody tr').length,
        artifacts: [...document.querySelectorAll('#artifacts li a')].map(
            (a) => a.getAttribute('href')),
    }));
    await shot(page, '6-job-report', out.shots);

    /* 7. The list again (the name filter is kept): the states as they
     * are now. */
    await page.goto(`${cfg.url}/#/`);
    await page.waitForSelector('#view[data-loaded]');
    out.filter_kept = await page.$eval('#filter-name', (e) => e.value);
    await page.waitForFunction((id) => {
        const tr = document.querySelector(`#jobs tr.job[data-id="${id}"]`);
        return tr && tr.dataset.status === 'cancelled';
    }, {}, cfg.cancel);
    out.list_after = await page.$$eval('#jobs tr.job', (rows) => rows.map(
        (tr) => ({ id: tr.dataset.id, status: tr.dataset.status })));
    await shot(page, '7-list-after', out.shots);
}

main().catch((e) => {
    process.stderr.write(String(e && e.stack || e) + '\n');
    process.exit(2);
});
