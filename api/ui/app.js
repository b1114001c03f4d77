/*
 * app.js - the sheaf dashboard: a list of jobs and a page per job, over the
 * public API only (SPEC section 3). No framework, no build step.
 *
 *   #/                 jobs, newest first, filtered by state and name
 *   #/jobs/{id}        a job: progress (event stream, else long polls),
 *                      stages, a per-partition timeline, tasks, result,
 *                      artifacts, the naive Bayes report, cancel, delete
 *
 * The bearer token, when the service wants one, is entered once and kept in
 * sessionStorage. The event stream is read with fetch() (EventSource cannot
 * send an Authorization header) and parsed here.
 */
'use strict';

(function () {
    const TERMINAL = ['succeeded', 'failed', 'cancelled'];
    const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
    const TOKEN_KEY = 'sheaf.token';
    const view = document.getElementById('view');

    /* Each rendering of a view gets a generation; loops of an older one
     * stop. */
    let generation = 0;
    let aborter = null;
    /* null: not tried yet; false: the service has no event stream. */
    let eventsWork = null;
    const filters = { status: '', name: '' };

    /* ---- small helpers ------------------------------------------------- */

    function el(tag, props, ...kids) {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(props || {})) {
            if (v === undefined || v === null || v === false)
                continue;
            if (k === 'class')
                e.className = v;
            else if (k === 'text')
                e.textContent = v;
            else if (k.startsWith('on'))
                e.addEventListener(k.slice(2), v);
            else if (k in e && k !== 'list')
                e[k] = v;
            else
                e.setAttribute(k, v);
        }
        for (const kid of kids.flat()) {
            if (kid === null || kid === undefined || kid === false)
                continue;
            e.append(kid instanceof Node ? kid : document.createTextNode(
                String(kid)));
        }
        return e;
    }

    function num(v) {
        return v === null || v === undefined ? '' : Number(v).toLocaleString(
            'en-US');
    }

    function bytes(v) {
        if (v === null || v === undefined)
            return '';
        const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
        let x = Number(v), i = 0;
        while (x >= 1024 && i < units.length - 1) {
            x /= 1024;
            i++;
        }
        return (i === 0 ? String(x) : x.toFixed(1)) + ' ' + units[i];
    }

    function when(ts) {
        if (!ts)
            return '';
        const d = new Date(ts);
        return isNaN(d) ? ts : d.toISOString().replace('T', ' ').replace(
            /\.\d+Z$|Z$/, 'Z');
    }

    function seconds(a, b) {
        if (!a)
            return '';
        const ms = (b ? new Date(b) : new Date()) - new Date(a);
        return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
    }

    function fixed(v, n) {
        return v === null || v === undefined ? '' : Number(v).toFixed(n);
    }

    function statusBadge(s) {
        return el('span', { class: 'status ' + s, text: s });
    }

    function sleep(ms, signal) {
        return new Promise((resolve) => {
            const t = setTimeout(resolve, ms);
            if (signal)
                signal.addEventListener('abort', () => {
                    clearTimeout(t);
                    resolve();
                }, { once: true });
        });
    }

    function notice(msg) {
        const n = document.getElementById('notice');
        n.textContent = msg || '';
        n.hidden = !msg;
    }

    /* ---- the token ----------------------------------------------------- */

    function token() {
        return sessionStorage.getItem(TOKEN_KEY) || '';
    }

    function showToken(open, msg) {
        document.getElementById('token-box').hidden = !open;
        document.getElementById('token-msg').textContent = msg || '';
        document.getElementById('token-state').textContent =
            token() ? 'token set' : '';
        if (open)
            document.getElementById('token-input').focus();
    }

    function setupToken() {
        const input = document.getElementById('token-input');
        document.getElementById('token-edit').addEventListener('click', () =>
            showToken(document.getElementById('token-box').hidden));
        const save = () => {
            sessionStorage.setItem(TOKEN_KEY, input.value.trim());
            input.value = '';
            showToken(false);
            render();
        };
        document.getElementById('token-save').addEventListener('click', save);
        input.addEventListener('keydown', (e) => {
            if (e.key === 'Enter')
                save();
        });
        document.getElementById('token-clear').addEventListener('click',
            () => {
                sessionStorage.removeItem(TOKEN_KEY);
                showToken(true);
            });
        showToken(false);
    }

    /* ---- the API ------------------------------------------------------- */

    class ApiError extends Error {
        constructor(status, body) {
            const e = body && body.error;
            super(e ? `${e.message} (${status} ${e.code})` : `HTTP ${status}`);
            this.status = status;
        }
    }

    function headers(extra) {
        const h = Object.assign({}, extra || {});
        if (token())
            h.Authorization = 'Bearer ' + token();
        return h;
    }

    async function call(method, path, opts) {
        opts = opts || {};
        const r = await fetch(path, {
            method, headers: headers(opts.headers), signal: opts.signal,
            cache: 'no-store',
        });
        if (r.status === 401) {
            showToken(true, 'The service wants a valid token.');
            throw new ApiError(401, await r.json().catch(() => null));
        }
        return r;
    }

    async function getJson(path, opts) {
        const r = await call('GET', path, opts);
        const body = await r.json().catch(() => null);
        if (!r.ok)
            throw new ApiError(r.status, body);
        return body;
    }

    /* A download link for 'path': a plain link without a token; with one,
     * the click fetches the file with the header and saves it. */
    function download(path, filename, text) {
        const a = el('a', { href: path, download: filename, text });
        a.addEventListener('click', async (ev) => {
            if (!token())
                return;
            ev.preventDefault();
            try {
                const r = await call('GET', path);
                if (!r.ok)
                    throw new ApiError(r.status, null);
                const url = URL.createObjectURL(await r.blob());
                const tmp = el('a', { href: url, download: filename });
                document.body.append(tmp);
                tmp.click();
                tmp.remove();
                setTimeout(() => URL.revokeObjectURL(url), 10000);
            } catch (e) {
                notice('download failed: ' + e.message);
            }
        });
        return a;
    }

    /* ---- the jobs list ------------------------------------------------- */

    function progressCell(job) {
        const p = job.progress || {};
        const total = p.partitions_total || 0;
        const done = p.partitions_done || 0;
        const bar = el('progress', { max: Math.max(total, 1),
                                     value: job.status === 'succeeded'
                                         ? Math.max(total, 1) : done });
        return el('td', {}, bar, ' ',
                  el('span', { class: 'muted count',
                               text: `${done}/${total}` }));
    }

    function jobRow(job) {
        return el('tr', { class: 'job', 'data-id': job.id,
                          'data-status': job.status },
            el('td', {}, el('a', { href: '#/jobs/' + job.id,
                                   class: 'job-link',
                                   text: job.name || job.id })),
            el('td', { class: 'state' }, statusBadge(job.status)),
            progressCell(job),
            el('td', { class: 'num',
                       text: num((job.progress || {}).rows_in) }),
            el('td', { class: 'num',
                       text: num(job.result && job.result.rows) }),
            el('td', { class: 'muted', text: when(job.created_at) }),
            el('td', { class: 'muted', text: job.started_at
                ? seconds(job.started_at, job.finished_at) : '' }));
    }

    async function renderList(gen, signal) {
        const status = el('select', { id: 'filter-status' },
            el('option', { value: '', text: 'all states' }),
            STATES.map((s) => el('option', { value: s, text: s })));
        status.value = filters.status;
        const name = el('input', { id: 'filter-name', type: 'search',
                                   placeholder: 'name contains',
                                   value: filters.name });
        const count = el('span', { id: 'job-count', class: 'muted' });
        const tbody = el('tbody', { id: 'jobs' });
        let body = null, limit = 200, more = null, nap = null;
        const reread = () => {
            if (nap)
                nap.abort();
        };
        const draw = () => {
            if (!body)
                return;
            const needle = filters.name.toLowerCase();
            const jobs = body.jobs.filter((j) => !needle
                || String(j.name || '').toLowerCase().includes(needle));
            tbody.replaceChildren(...jobs.map(jobRow));
            if (jobs.length === 0)
                tbody.append(el('tr', {}, el('td', { colSpan: 7,
                    class: 'muted', text: 'no jobs' })));
            count.textContent = `${jobs.length} job` +
                (jobs.length === 1 ? '' : 's') +
                (body.next_cursor ? ` (of the newest ${limit})` : '');
            if (body.next_cursor && !more && limit < 1000) {
                more = el('button', { type: 'button', text: 'Read more' });
                more.addEventListener('click', () => {
                    limit = Math.min(limit * 5, 1000);
                    more.remove();
                    more = null;
                    reread();
                });
                count.after(more);
            }
        };
        status.addEventListener('change', () => {
            filters.status = status.value;
            reread();
        });
        name.addEventListener('input', () => {
            filters.name = name.value;
            draw();
        });
        view.replaceChildren(
            el('h1', { text: 'Jobs' }),
            el('div', { class: 'filters' },
               el('label', { for: 'filter-status', text: 'State' }), status,
               el('label', { for: 'filter-name', text: 'Name' }), name,
               count),
            el('table', { id: 'jobs-table' },
               el('thead', {}, el('tr', {},
                   el('th', { text: 'name' }), el('th', { text: 'state' }),
                   el('th', { text: 'progress (partitions)' }),
                   el('th', { class: 'num', text: 'rows in' }),
                   el('th', { class: 'num', text: 'rows out' }),
                   el('th', { text: 'created' }),
                   el('th', { text: 'elapsed' }))),
               tbody));
        while (gen === generation) {
            try {
                const q = new URLSearchParams({ limit: String(limit) });
                if (filters.status)
                    q.set('status', filters.status);
                const got = await getJson('/v1/jobs?' + q, { signal });
                if (gen !== generation)
                    return;
                body = got;
                draw();
                view.dataset.loaded = String(Date.now());
                notice('');
            } catch (e) {
                if (signal.aborted)
                    return;
                notice('cannot list jobs: ' + e.message);
                /* Saving a token renders the list again. */
                if (e instanceof ApiError && e.status === 401)
                    return;
            }
            nap = new AbortController();
            const stop = () => nap.abort();
            signal.addEventListener('abort', stop, { once: true });
            await sleep(2000, nap.signal);
            signal.removeEventListener('abort', stop);
        }
    }

    /* ---- a job's page -------------------------------------------------- */

    const TIMELINE_MAX = 500; /* rows of the timeline */
    const TASK_COLS = ['stage', 'partition', 'state', 'attempts', 'worker',
                       'started', 'finished', 'time', 'rows in', 'rows out',
                       'spill', 'error'];

    function stagesTable(tasks) {
        const stages = new Map();
        for (const t of tasks) {
            let s = stages.get(t.stage);
            if (!s) {
                s = { n: 0, done: 0, running: 0, failed: 0, rows_in: 0,
                      rows_out: 0, spill: 0, attempts: 0 };
                stages.set(t.stage, s);
            }
            s.n++;
            if (t.state === 'done' || t.state === 'succeeded')
                s.done++;
            else if (t.state === 'running')
                s.running++;
            else if (t.state === 'failed')
                s.failed++;
            s.rows_in += t.rows_in || 0;
            s.rows_out += t.rows_out || 0;
            s.spill += t.spill_bytes || 0;
            s.attempts += t.attempts || 0;
        }
        return el('table', { id: 'stages', class: 'compact' },
            el('thead', {}, el('tr', {}, ['stage', 'tasks', 'done', 'running',
                'failed', 'attempts', 'rows in', 'rows out', 'spill'].map(
                (h, i) => el('th', { class: i ? 'num' : '', text: h })))),
            el('tbody', {}, [...stages.entries()].map(([k, s]) =>
                el('tr', { class: 'stage' },
                   el('td', { text: String(k) }),
                   el('td', { class: 'num', text: num(s.n) }),
                   el('td', { class: 'num', text: num(s.done) }),
                   el('td', { class: 'num', text: num(s.running) }),
                   el('td', { class: 'num', text: num(s.failed) }),
                   el('td', { class: 'num', text: num(s.attempts) }),
                   el('td', { class: 'num', text: num(s.rows_in) }),
                   el('td', { class: 'num', text: num(s.rows_out) }),
                   el('td', { class: 'num', text: bytes(s.spill) })))));
    }

    function taskTitle(t) {
        return `stage ${t.stage} partition ${t.partition}: ${t.state}, ` +
            `attempts ${t.attempts}, worker ${t.worker || '-'}, ` +
            `${when(t.started_at)} - ${when(t.finished_at)}, rows in ` +
            `${num(t.rows_in)}, out ${num(t.rows_out)}, spill ` +
            `${bytes(t.spill_bytes)}` + (t.error ? ', error: ' + t.error : '');
    }

    function timeline(tasks) {
        const started = tasks.filter((t) => t.started_at);
        if (started.length === 0)
            return el('p', { id: 'timeline', class: 'muted',
                             text: 'no task has started yet' });
        const t0 = Math.min(...started.map((t) => Date.parse(t.started_at)));
        const t1 = Math.max(...started.map((t) =>
            t.finished_at ? Date.parse(t.finished_at) : Date.now()));
        const span = Math.max(t1 - t0, 1);
        const shown = started.slice(0, TIMELINE_MAX);
        const rows = shown.map((t) => {
            const s = Date.parse(t.started_at);
            const e = t.finished_at ? Date.parse(t.finished_at) : Date.now();
            const bar = el('div', { class: 'tl-bar ' + t.state,
                                    title: taskTitle(t) });
            bar.style.left = (100 * (s - t0) / span).toFixed(3) + '%';
            bar.style.width = (100 * Math.max(e - s, 0) / span).toFixed(3)
                + '%';
            return el('div', { class: 'tl-row' },
                      el('span', { class: 'tl-label',
                                   text: `${t.stage}/${t.partition}` }),
                      el('div', { class: 'tl-track' }, bar));
        });
        return el('div', { id: 'timeline' },
            el('div', { class: 'timeline' }, rows),
            started.length > shown.length ? el('p', { class: 'muted', text:
                `the first ${shown.length} of ${started.length} started ` +
                'tasks' }) : null,
            el('div', { class: 'tl-axis' }, el('span', { text: '0 s' }),
               el('span', { text: (span / 1000).toFixed(2) + ' s' })));
    }

    /* The task table in a <details>: its rows are made only while it is
     * open (a job may have thousands of tasks). */
    function tasksTable(tasks, open) {
        const d = el('details', { id: 'tasks-details' },
            el('summary', { text: `${tasks.length} tasks` }));
        if (open) {
            d.open = true;
            d.append(tasksRows(tasks));
        }
        d.addEventListener('toggle', () => {
            if (d.open && !d.querySelector('table'))
                d.append(tasksRows(tasks));
        });
        return d;
    }

    function tasksRows(tasks) {
        return el('table', { id: 'tasks' },
               el('thead', {}, el('tr', {}, TASK_COLS.map((h) =>
                   el('th', { text: h })))),
               el('tbody', {}, tasks.map((t) => el('tr', { class: 'task' },
                   el('td', { text: String(t.stage) }),
                   el('td', { text: String(t.partition) }),
                   el('td', {}, statusBadge(t.state)),
                   el('td', { class: 'num', text: num(t.attempts) }),
                   el('td', { class: 'mono', text: t.worker || '' }),
                   el('td', { class: 'muted', text: when(t.started_at) }),
                   el('td', { class: 'muted', text: when(t.finished_at) }),
                   el('td', { class: 'num',
                              text: seconds(t.started_at, t.finished_at) }),
                   el('td', { class: 'num', text: num(t.rows_in) }),
                   el('td', { class: 'num', text: num(t.rows_out) }),
                   el('td', { class: 'num', text: bytes(t.spill_bytes) }),
                   el('td', { class: 'error', text: t.error || '' })))));
    }

    /* A small CSV parser (RFC 4180) for the preview. */
    function parseCsv(text, maxRows) {
        const rows = [];
        let row = [], field = '', i = 0, q = false;
        while (i < text.length && rows.length < maxRows) {
            const c = text[i++];
            if (q) {
                if (c === '"' && text[i] === '"') {
                    field += '"';
                    i++;
                } else if (c === '"') {
                    q = false;
                } else {
                    field += c;
                }
            } else if (c === '"') {
                q = true;
            } else if (c === ',') {
                row.push(field);
                field = '';
            } else if (c === '\n' || c === '\r') {
                if (c === '\r' && text[i] === '\n')
                    i++;
                row.push(field);
                rows.push(row);
                row = [];
                field = '';
            } else {
                field += c;
            }
        }
        return rows;
    }

    async function resultSection(job, signal) {
        const out = (job.spec && job.spec.output) || {};
        const jsonl = out.format === 'jsonl';
        const gz = out.compression === 'gzip';
        const fname = 'result.' + (jsonl ? 'jsonl' : 'csv') +
            (gz ? '.gz' : '');
        const url = `/v1/jobs/${job.id}/result`;
        const sec = el('section', { id: 'result' },
            el('h2', { text: 'Result' }),
            el('p', {}, download(url, fname, fname), ' ',
               el('span', { class: 'muted', text:
                   `${bytes(job.result.bytes)}, ${num(job.result.rows)} rows` }
               )));
        sec.querySelector('a').id = 'result-link';
        if (!gz && !jsonl) {
            try {
                const r = await call('GET', url, {
                    headers: { Range: 'bytes=0-16383' }, signal });
                if (r.ok) {
                    const text = await r.text();
                    const rows = parseCsv(text, 21);
                    if (rows.length > 0) {
                        const shown = rows.slice(1, 21);
                        sec.append(el('table', { id: 'preview',
                                                 class: 'compact' },
                            el('thead', {}, el('tr', {}, rows[0].map((h) =>
                                el('th', { text: h })))),
                            el('tbody', {}, shown.map((rw) => el('tr', {},
                                rw.map((v) => el('td', { text: v })))))));
                        if (job.result.rows > shown.length)
                            sec.append(el('p', { class: 'muted', text:
                                `first ${shown.length} of ` +
                                `${num(job.result.rows)} rows` }));
                    }
                }
            } catch (e) {
                if (!signal.aborted)
                    sec.append(el('p', { class: 'error',
                                         text: 'preview: ' + e.message }));
            }
        }
        return sec;
    }

    function reportTables(rep) {
        const sec = el('section', { id: 'report' },
            el('h2', { text: 'Naive Bayes report' }),
            el('dl', { class: 'kv' },
               el('dt', { text: 'accuracy' }),
               el('dd', { id: 'report-accuracy',
                          text: fixed(rep.accuracy, 4) }),
               el('dt', { text: 'trained on' }),
               el('dd', { text: num(rep.n_train) + ' rows' }),
               el('dt', { text: 'tested on' }),
               el('dd', { text: num(rep.n_test) + ' rows' })));
        const per = rep.per_class || {};
        const rows = Object.entries(per).map(([label, m]) =>
            el('tr', { class: 'class-row' }, el('td', { text: label }),
               el('td', { class: 'num', text: fixed(m.precision, 3) }),
               el('td', { class: 'num', text: fixed(m.recall, 3) }),
               el('td', { class: 'num', text: fixed(m.f1, 3) }),
               el('td', { class: 'num', text: num(m.support) })));
        for (const [label, m] of [['macro avg', rep.macro_avg],
                                  ['weighted avg', rep.weighted_avg]])
            if (m)
                rows.push(el('tr', { class: 'muted' },
                    el('td', { text: label }),
                    el('td', { class: 'num', text: fixed(m.precision, 3) }),
                    el('td', { class: 'num', text: fixed(m.recall, 3) }),
                    el('td', { class: 'num', text: fixed(m.f1, 3) }),
                    el('td', { class: 'num', text: num(m.support) })));
        sec.append(el('table', { id: 'report-classes', class: 'compact' },
            el('thead', {}, el('tr', {}, ['class', 'precision', 'recall', 'f1',
                'support'].map((h, i) => el('th', { class: i ? 'num' : '',
                                                    text: h })))),
            el('tbody', {}, rows)));
        const conf = rep.confusion;
        if (conf && conf.labels && conf.matrix) {
            sec.append(el('h2', { text: 'Confusion (rows: true, columns: ' +
                                        'predicted)' }),
                el('table', { id: 'report-confusion', class: 'compact' },
                   el('thead', {}, el('tr', {}, el('th', {}),
                       conf.labels.map((l) => el('th', { class: 'num',
                                                         text: l })))),
                   el('tbody', {}, conf.matrix.map((row, i) => el('tr', {},
                       el('th', { text: conf.labels[i] }),
                       row.map((v) => el('td', { class: 'num',
                                                 text: num(v) })))))));
        }
        return sec;
    }

    async function artifactsSection(job, signal) {
        const body = await getJson(`/v1/jobs/${job.id}/artifacts`, { signal });
        const list = body.artifacts || [];
        if (list.length === 0)
            return null;
        const sec = el('section', { id: 'artifacts' },
            el('h2', { text: 'Artifacts' }),
            el('ul', {}, list.map((a) => el('li', {},
                download(`/v1/jobs/${job.id}/artifacts/` +
                         encodeURIComponent(a.name), a.name, a.name),
                ' ', el('span', { class: 'muted', text: bytes(a.bytes) })))));
        if (list.some((a) => a.name === 'report')) {
            const rep = await getJson(`/v1/jobs/${job.id}/artifacts/report`,
                                      { signal });
            sec.append(reportTables(rep));
        }
        return sec;
    }

    /* Read the job's event stream. Calls onData(parsed data) per event.
     * Returns 'none' when the service has no stream, 'terminal' after a
     * terminal state, 'ended' when the stream closed before one. */
    async function followEvents(id, onData, signal, lastId) {
        const h = { Accept: 'text/event-stream' };
        if (lastId)
            h['Last-Event-ID'] = lastId;
        const r = await call('GET', `/v1/jobs/${id}/events`,
                             { headers: h, signal });
        const type = r.headers.get('Content-Type') || '';
        if (!r.ok || !type.startsWith('text/event-stream') || !r.body) {
            if (r.body)
                await r.body.cancel().catch(() => {});
            return { how: 'none', lastId };
        }
        eventsWork = true;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '', data = [], terminal = false;
        for (;;) {
            const { value, done } = await reader.read();
            if (done)
                break;
            buf += value;
            let nl;
            while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
                const line = buf.slice(0, nl);
                buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
                if (line === '') {
                    if (data.length) {
                        let d = null;
                        try {
                            d = JSON.parse(data.join('\n'));
                        } catch (e) {
                            d = null;
                        }
                        if (d && typeof d === 'object') {
                            onData(d);
                            if (TERMINAL.includes(d.status))
                                terminal = true;
                        }
                    }
                    data = [];
                    if (terminal) {
                        reader.cancel().catch(() => {});
                        return { how: 'terminal', lastId };
                    }
                    continue;
                }
                if (line.startsWith(':'))
                    continue;
                const colon = line.indexOf(':');
                const field = colon < 0 ? line : line.slice(0, colon);
                let val = colon < 0 ? '' : line.slice(colon + 1);
                if (val.startsWith(' '))
                    val = val.slice(1);
                if (field === 'data')
                    data.push(val);
                else if (field === 'id')
                    lastId = val;
            }
        }
        return { how: 'ended', lastId };
    }

    async function renderJob(id, gen, signal) {
        let job = await getJson(`/v1/jobs/${id}`, { signal });
        if (gen !== generation)
            return;
        const badge = el('span', { id: 'job-status' });
        const bar = el('progress', { id: 'job-progress', class: 'big' });
        const ptext = el('span', { id: 'job-progress-text' });
        const live = el('span', { id: 'live', class: 'live' });
        const facts = el('dl', { class: 'kv', id: 'job-facts' });
        const err = el('p', { id: 'job-error', class: 'error' });
        const stages = el('div', { id: 'stages-box' });
        const tl = el('div', { id: 'timeline-box' });
        const tasksBox = el('div', { id: 'tasks-box' });
        const tail = el('div', { id: 'tail' });
        const cancel = el('button', { id: 'cancel', type: 'button',
                                      class: 'danger', text: 'Cancel' });
        const del = el('button', { id: 'delete', type: 'button',
                                   class: 'danger', text: 'Delete' });
        const actions = el('div', { class: 'actions' }, cancel, del);

        cancel.addEventListener('click', async () => {
            cancel.disabled = true;
            try {
                const r = await call('POST', `/v1/jobs/${id}/cancel`);
                const body = await r.json().catch(() => null);
                if (!r.ok)
                    throw new ApiError(r.status, body);
                if (body)
                    show(body);
                notice('');
            } catch (e) {
                notice('cancel failed: ' + e.message);
            }
            wakeJob();
        });
        del.addEventListener('click', async () => {
            if (del.dataset.armed !== '1') {
                del.dataset.armed = '1';
                del.textContent = 'Delete: click again to confirm';
                return;
            }
            del.disabled = true;
            try {
                const r = await call('DELETE', `/v1/jobs/${id}`);
                if (!r.ok)
                    throw new ApiError(r.status,
                                       await r.json().catch(() => null));
                location.hash = '#/';
            } catch (e) {
                del.disabled = false;
                notice('delete failed: ' + e.message);
            }
        });

        view.replaceChildren(
            el('p', {}, el('a', { href: '#/', text: '\u2190 all jobs' })),
            el('h1', { id: 'job-name', text: job.name || job.id }), badge,
            ' ', bar, ' ', ptext, live, err, actions, facts,
            el('h2', { text: 'Stages' }), stages,
            el('h2', { text: 'Timeline of tasks' }), tl, tasksBox, tail);

        function show(j) {
            job = Object.assign(job, j);
            const p = job.progress || {};
            const total = p.partitions_total || 0;
            badge.replaceChildren(statusBadge(job.status));
            badge.dataset.status = job.status;
            bar.max = Math.max(total, 1);
            bar.value = job.status === 'succeeded' ? bar.max
                : (p.partitions_done || 0);
            ptext.textContent = `${p.partitions_done || 0} / ${total} ` +
                `partitions done, ${p.partitions_running || 0} running, ` +
                `${p.partitions_failed || 0} failed`;
            err.textContent = job.error || '';
            cancel.disabled = TERMINAL.includes(job.status);
            del.disabled = !TERMINAL.includes(job.status);
            const f = [['id', job.id], ['created', when(job.created_at)],
                       ['started', when(job.started_at)],
                       ['finished', when(job.finished_at)],
                       ['elapsed', job.started_at
                           ? seconds(job.started_at, job.finished_at) : ''],
                       ['rows in', num(p.rows_in)],
                       ['bytes in', bytes(p.bytes_in)],
                       ['rows out', num(p.rows_out)],
                       ['priority', String(job.priority ?? '')],
                       ['max attempts', String(job.max_attempts ?? '')]];
            facts.replaceChildren(...f.flatMap(([k, v]) => [
                el('dt', { text: k }), el('dd', { text: v })]));
        }

        let lastTasks = 0;
        async function showTasks(force) {
            if (!force && Date.now() - lastTasks < 1000)
                return;
            lastTasks = Date.now();
            /* The list comes in pages of up to 1000 tasks. */
            let tasks = [], cursor = null;
            do {
                const q = cursor ? `?cursor=${encodeURIComponent(cursor)}`
                                 : '';
                const body = await getJson(`/v1/jobs/${id}/tasks${q}`,
                                           { signal });
                if (gen !== generation)
                    return;
                tasks = tasks.concat(body.tasks);
                cursor = body.next_cursor;
            } while (cursor);
            const open = tasksBox.querySelector('details');
            stages.replaceChildren(stagesTable(tasks));
            tl.replaceChildren(timeline(tasks));
            tasksBox.replaceChildren(tasksTable(tasks, open && open.open));
        }

        let woken = null;
        function wakeJob() {
            if (woken)
                woken();
        }

        show(job);
        await showTasks(true);
        /* Follow the job until it ends: its event stream when the service
         * has one, else long polls. */
        let lastId = null;
        while (gen === generation && !TERMINAL.includes(job.status)) {
            if (eventsWork !== false) {
                live.textContent = 'live: event stream';
                const got = await followEvents(id, (d) => {
                    live.dataset.events = String(
                        Number(live.dataset.events || 0) + 1);
                    if (d.id && d.id !== id)
                        return;
                    const j = {};
                    if (typeof d.status === 'string')
                        j.status = d.status;
                    if (d.progress && typeof d.progress === 'object')
                        j.progress = Object.assign({}, job.progress,
                                                   d.progress);
                    show(j);
                    showTasks(false).catch(() => {});
                }, signal, lastId).catch((e) => {
                    if (signal.aborted)
                        return { how: 'aborted' };
                    return { how: 'error', error: e };
                });
                if (got.how === 'aborted')
                    return;
                lastId = got.lastId || lastId;
                live.dataset.lastId = lastId || '';
                if (got.how === 'none')
                    eventsWork = false;
                if (got.how === 'terminal' || got.how === 'ended' ||
                    got.how === 'error') {
                    job = Object.assign(job, await getJson(`/v1/jobs/${id}`,
                                                           { signal }));
                    show(job);
                    if (got.how !== 'terminal')
                        await sleep(1000, signal);
                    continue;
                }
            }
            live.textContent = 'live: polling';
            const waitDone = new Promise((resolve) => {
                woken = resolve;
            });
            const j = await Promise.race([
                getJson(`/v1/jobs/${id}?wait=2`, { signal }),
                waitDone.then(() => getJson(`/v1/jobs/${id}`, { signal }))]);
            if (gen !== generation)
                return;
            show(j);
            await showTasks(true);
        }
        if (gen !== generation)
            return;
        live.textContent = '';
        job = Object.assign(job, await getJson(`/v1/jobs/${id}`, { signal }));
        show(job);
        await showTasks(true);
        if (job.status === 'succeeded') {
            tail.append(await resultSection(job, signal));
            const arts = await artifactsSection(job, signal);
            if (arts)
                tail.append(arts);
        }
        view.dataset.settled = job.status;
    }

    /* ---- routing ------------------------------------------------------- */

    async function render() {
        generation++;
        const gen = generation;
        if (aborter)
            aborter.abort();
        aborter = new AbortController();
        const signal = aborter.signal;
        notice('');
        delete view.dataset.settled;
        delete view.dataset.loaded;
        const m = /^#\/jobs\/([0-9a-fA-F-]{36})\/?$/.exec(location.hash);
        try {
            if (m)
                await renderJob(m[1].toLowerCase(), gen, signal);
            else
                await renderList(gen, signal);
        } catch (e) {
            if (signal.aborted || gen !== generation)
                return;
            if (e instanceof ApiError && e.status === 404)
                view.replaceChildren(el('h1', { text: 'No such job' }),
                    el('p', {}, el('a', { href: '#/', text: 'all jobs' })));
            else
                notice(e.message);
        }
    }

    window.addEventListener('hashchange', render);
    setupToken();
    render();
})();
