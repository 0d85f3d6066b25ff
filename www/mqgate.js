/*
 * mqgate.js - the browser client library for mqgate (browser protocol v1).
 *
 * A classic script with no dependencies: <script src="/mqgate.js"> defines
 * the global `mqgate`; ES modules import it through /mqgate.esm.js; workers
 * use importScripts(). It owns the connection to the daemon (WebSocket, or
 * Server-Sent Events + POST /publish as the fallback), reconnection with
 * jittered backoff and resume by event id, the per-subscription routing
 * and de-duplication of messages, and the tab side of the shared
 * connection that www/mqgate-worker.js keeps for all tabs of an origin.
 * API and behaviour: www/README.md.
 */
((G) => {
	'use strict';
	if (G.mqgate)
		return;

	const SEEN_MAX = 4096;	/* event ids remembered for de-duplication */
	const QUEUE_MAX = 100;	/* publishes held while disconnected */
	const noop = () => {};

	const mkerr = (code, message) =>
		Object.assign(new Error(message || code), { code });

	/* MQTT filter matching; `$` topics never match a leading wildcard. */
	function match(filter, topic) {
		const f = filter.split('/'), t = topic.split('/');
		let i;

		if ((f[0] === '#' || f[0] === '+') && topic[0] === '$')
			return false;
		for (i = 0; i < f.length; i++) {
			if (f[i] === '#')
				return true;
			if (i >= t.length || (f[i] !== '+' && f[i] !== t[i]))
				return false;
		}
		return i === t.length;
	}

	/* "<epoch>-<seq>" -> [epoch, seq]; ids are otherwise opaque. */
	function idsplit(id) {
		const i = id ? id.lastIndexOf('-') : -1;
		return i < 0 ? null : [id.slice(0, i), +id.slice(i + 1)];
	}

	/* Message object handed to handlers (shared by them: do not mutate). */
	function decode(m) {
		const o = { topic: m.topic, payload: m.payload, retain: !!m.retain,
			    qos: m.qos | 0, ts: m.ts, event: m.event };
		if (m.encoding === 'base64') {
			o.payload = Uint8Array.from(atob(m.payload),
						    (c) => c.charCodeAt(0));
			o.encoding = 'base64';
		}
		return o;
	}

	/* Publish frame body (without op) for any payload type. */
	function pubframe(topic, p, o) {
		const f = { topic, payload: p ?? '', qos: o.qos | 0,
			    retain: !!o.retain };
		if (p instanceof ArrayBuffer)
			p = new Uint8Array(p);
		if (ArrayBuffer.isView(p)) {
			let s = '';
			p = new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
			for (let i = 0; i < p.length; i += 0x8000)
				s += String.fromCharCode(...p.subarray(i, i + 0x8000));
			f.payload = btoa(s);
			f.encoding = 'base64';
		}
		return f;
	}

	/* http(s) base of the daemon: explicit url, ws(s):// or the page. */
	const base = (url) => String(url || G.location?.origin || '')
		.replace(/^ws(s?):/i, 'http$1:').replace(/\/+$/, '')
		.replace(/\/(ws|events)$/, '');

	const qs = (pairs) => pairs.filter((p) => p[1] != null)
		.map((p) => p[0] + '=' + encodeURIComponent(p[1])).join('&');

	/* Call a user function; its exception is reported, not propagated. */
	const later = (fn) => (...a) => {
		try {
			fn(...a);
		} catch (e) {
			setTimeout(() => { throw e; });
		}
	};

	/* Bodies of an error reply from POST /publish or GET /events. */
	const httperr = (r) => r.json().catch(() => ({})).then((j) =>
		mkerr(j.error || 'http_' + r.status, j.message || r.statusText));

	/* Listener registry and subscription bookkeeping both clients share. */
	class Emitter {
		constructor() {
			this.ls = {};
			this.state = 'connecting';
			this.transport = null;
			this.subs = new Map();	/* sid -> subscription; owns them */
			this.sid = 0;
		}

		on(ev, fn) {
			const l = this.ls[ev] || (this.ls[ev] = []);
			l.push(fn);
			return () => {
				const i = l.indexOf(fn);
				if (i >= 0)
					l.splice(i, 1);
			};
		}

		emit(ev, ...a) {
			for (const fn of (this.ls[ev] || []).slice())
				later(fn)(...a);
		}

		set(s, tr) {
			if (this.state !== s || this.transport !== tr) {
				this.state = s;
				this.transport = tr;
				this.emit('state', s, tr);
			}
		}

		/* A new subscription record with its `ready` promise. */
		mksub(filter, fn, o) {
			const s = { id: ++this.sid, filter: String(filter),
				    fn: later(fn), o: o || {} };
			s.ready = new Promise((res, rej) => {
				s.res = res;
				s.rej = rej;
			});
			s.ready.catch(noop);
			this.subs.set(s.id, s);
			return s;
		}

		granted(s, topics) {
			if (this.subs.get(s.id) === s) {
				s.ok = true;
				s.res(topics || [s.filter]);
			}
		}

		failed(s, e) {
			if (this.subs.get(s.id) === s) {
				this.subs.delete(s.id);
				s.rej(e);
				if (s.o.onError)
					later(s.o.onError)(e);
			}
		}
	}

	/* ---- direct connection ---------------------------------------------- */

	class Client extends Emitter {
		constructor(url, o) {
			super();
			this.o = o;
			this.base = base(url);
			this.seen = new Map();	/* event id -> [sid]; bounded */
			this.req = new Map();	/* frame id -> {res, rej, t} */
			this.outq = [];		/* {f, res, rej} until connected */
			this.rid = 0;
			this.tries = 0;
			this.sticky = false;	/* ws refused, sse worked */
			this.go();
		}

		async go() {
			const o = this.o, t = o.transport || 'auto';

			this.timer = null;
			if (this.closed)
				return;
			try {
				this.tok = o.tokenProvider ? await o.tokenProvider()
					: o.token;
			} catch (e) {
				this.emit('error', e);
				return this.retry();
			}
			if (this.closed)
				return;
			if (t === 'sse' || this.sticky || typeof WebSocket !== 'function')
				return this.sse(false);
			this.wsopen(t === 'auto');
		}

		/* Jittered exponential backoff: 0.5 s .. 30 s. */
		retry() {
			const max = Math.min(30000, 500 * 2 ** this.tries++);

			if (this.closed || this.timer)
				return;
			this.set(this.was ? 'reconnecting' : 'connecting', null);
			this.timer = setTimeout(() => this.go(),
						500 + Math.random() * (max - 500));
		}

		opened(tr) {
			this.tries = 0;
			this.was = true;
			this.set('open', tr);
			for (const q of this.outq.splice(0))
				this.send(q.f).then(q.res, q.rej);
		}

		/* The transport died: everything in flight is lost; try again. */
		dropped() {
			const e = mkerr('unavailable', 'connection lost');

			e.lost = true;
			clearInterval(this.pinger);
			this.transport = null;
			for (const r of this.req.values()) {
				clearTimeout(r.t);
				r.rej(e);
			}
			this.req.clear();
			if (!this.closed)
				this.retry();
		}

		close() {
			this.closed = true;
			clearTimeout(this.timer);
			this.ws?.close(1000);
			this.es?.close();
			this.es2?.close();
			this.ws = this.es = this.es2 = null;
			this.dropped();
			for (const q of this.outq.splice(0))
				q.rej(mkerr('unavailable', 'client closed'));
			this.set('closed', null);
		}

		/* ---- WebSocket ---- */

		wsopen(fallback) {
			let ws, up = false;

			try {
				ws = new WebSocket(this.base.replace(/^http/i, 'ws') +
					'/ws?' + qs([['access_token', this.tok]]),
					'mqgate.v1');
			} catch (e) {
				return fallback ? this.sse(true) : this.retry();
			}
			this.ws = ws;
			ws.onopen = () => {
				up = true;
				this.opened('ws');
				this.resume();
				this.pinger = setInterval(() => {
					this.call({ op: 'ping' }, 10000).catch(() => {
						if (this.ws === ws)
							ws.close();
					});
				}, 25000);
			};
			ws.onmessage = (e) => {
				let m;
				try {
					m = JSON.parse(e.data);
				} catch (x) {
					return;
				}
				this.frame(m);
			};
			ws.onclose = () => {
				if (this.ws !== ws)
					return;
				this.ws = null;
				if (up)
					this.dropped();
				else if (fallback)
					this.sse(true);
				else
					this.retry();
			};
		}

		frame(m) {
			const r = m.id != null && this.req.get(m.id);

			if (m.op === 'message')
				this.msg(m);
			else if (m.op === 'reset')
				this.reset(m.reason);
			else if (m.op === 'hello')
				this.server = m;
			else if (r) {
				this.req.delete(m.id);
				clearTimeout(r.t);
				if (m.op === 'error')
					r.rej(mkerr(m.code, m.message));
				else
					r.res(m);
			} else if (m.op === 'error') {
				this.emit('error', mkerr(m.code, m.message));
			}
		}

		/* Send a frame that expects a reply; resolves with the reply. */
		call(f, ms) {
			const ws = this.ws;

			return new Promise((res, rej) => {
				const id = f.id = ++this.rid;
				if (ws?.readyState !== 1)
					return rej(mkerr('unavailable', 'not connected'));
				this.req.set(id, { res, rej, t: setTimeout(() => {
					this.req.delete(id);
					rej(mkerr('timeout', 'no reply from server'));
				}, ms || 30000) });
				ws.send(JSON.stringify(f));
			});
		}

		/* Publish over whatever is connected now. */
		send(f) {
			const h = { 'Content-Type': 'application/json' };

			if (this.transport === 'ws')
				return this.call({ op: 'publish', ...f }).then(noop);
			if (this.tok)
				h.Authorization = 'Bearer ' + this.tok;
			return fetch(this.base + '/publish', { method: 'POST',
				headers: h, body: JSON.stringify(f) }).then((r) => {
				if (!r.ok)
					return httperr(r).then((e) => { throw e; });
			}, () => {
				throw mkerr('unavailable', 'cannot reach ' + this.base);
			});
		}

		publish(topic, payload, o) {
			const f = pubframe(topic, payload, o || {});

			if (this.transport)
				return this.send(f);
			if (this.closed || this.outq.length >= QUEUE_MAX)
				return Promise.reject(mkerr('unavailable',
							    'not connected'));
			return new Promise((res, rej) =>
				this.outq.push({ f, res, rej }));
		}

		/* (Re)subscribe over a fresh WebSocket: the granted filters resume
		 * in one request from the last event id; new ones get their own
		 * request and snapshot. */
		resume() {
			const act = [], fresh = [];

			for (const s of this.subs.values())
				(s.ok ? act : fresh).push(s);
			if (act.length)
				this.wssub(act, this.lastId);
			for (const s of fresh)
				this.wssub([s]);
		}

		wssub(subs, since) {
			const f = { op: 'subscribe',
				    topics: [...new Set(subs.map((s) => s.filter))] };

			if (since)
				f.since = since;
			else if (subs[0].o.snapshot === false)
				f.snapshot = false;
			this.call(f).then((m) => {
				for (const s of subs)
					this.granted(s, m.topics);
			}, (e) => {
				if (e.lost || e.code === 'timeout')
					return;
				for (const s of subs) {	/* find the culprit */
					if (subs.length > 1)
						this.wssub([s]);
					else
						this.failed(s, e);
				}
			});
		}

		/* ---- Server-Sent Events ---- */

		/* Open a stream for every subscription. `resync`: the stream
		 * replaces a working one (subscriptions changed) and overlaps it
		 * until it is open, so nothing is lost in between. */
		sse(fromws, resync) {
			const subs = [...this.subs.values()];
			const topics = [...new Set(subs.map((s) => s.filter))];
			let since = this.lastId, es, up = false, url;

			if (resync && subs.some((s) => !s.ok))
				since = null;	/* a new filter needs its snapshot */
			if (!topics.length) {
				if (resync) {
					this.es?.close();
					this.es = null;
					return;
				}
				/* Nothing to stream: just check the daemon is there. */
				return fetch(this.base + '/healthz').then((r) => {
					if (r.status !== 200 && r.status !== 503)
						throw 0;
					this.sticky ||= fromws;
					this.opened('sse');
				}).catch(() => this.retry());
			}
			url = this.base + '/events?' + qs(topics.map((t) =>
				['topic', t]).concat([['lastEventId', since],
						      ['access_token', this.tok]]));
			try {
				es = new EventSource(url);
			} catch (e) {
				return this.retry();
			}
			this.es2?.close();
			this.es2 = es;
			es.onopen = () => {
				const old = this.es;
				up = true;
				this.es = es;
				this.es2 = null;
				if (old)
					setTimeout(() => old.close(), 300);
				for (const s of subs)
					if (!since || s.ok)
						this.granted(s);
				if (!resync) {
					this.sticky ||= fromws;
					this.opened('sse');
				}
				if (this.subs.size !== subs.length ||
				    subs.some((s) => !s.ok))
					this.resync();
			};
			es.onmessage = (e) => {
				let m;
				try {
					m = JSON.parse(e.data);
				} catch (x) {
					return;
				}
				m.event = e.lastEventId;
				this.msg(m);
			};
			es.addEventListener('reset', (e) => {
				let r;
				try {
					r = JSON.parse(e.data).reason;
				} catch (x) {}
				this.reset(r);
			});
			es.onerror = () => {
				es.close();
				if (this.es2 === es)
					this.es2 = null;
				if (!up)
					this.probe(url, subs, resync, fromws);
				else if (this.es === es) {
					this.es = null;
					this.dropped();
				}
			};
		}

		/* A stream would not open: learn why from the HTTP status. A
		 * refused new filter fails its subscriptions; the rest retry. */
		probe(url, subs, resync, fromws) {
			const ac = new AbortController();

			fetch(url, { signal: ac.signal }).then((r) => {
				if (r.ok) {
					ac.abort();
					throw 0;
				}
				return httperr(r).then((e) => {
					let n = 0;
					for (const s of subs)
						if (!s.ok && (r.status === 400 ||
							      r.status === 403) && ++n)
							this.failed(s, e);
					if (!n)
						this.emit('error', e);
					throw n;
				});
			}).catch((x) => {
				const n = typeof x === 'number' ? x : 0;
				if (resync)
					setTimeout(() => this.resync(), n ? 0 : 1000);
				else if (n)
					this.sse(fromws);
				else
					this.retry();
			});
		}

		/* Subscriptions changed on SSE: reopen once this turn ends. */
		resync() {
			if (this.rs)
				return;
			this.rs = true;
			Promise.resolve().then(() => {
				this.rs = false;
				if (this.transport === 'sse' && !this.closed)
					this.sse(false, true);
			});
		}

		/* ---- subscriptions and delivery ---- */

		subscribe(filter, fn, o) {
			const s = this.mksub(filter, fn, o);
			const unsub = () => {
				if (this.subs.get(s.id) !== s)
					return;
				this.subs.delete(s.id);
				s.rej(mkerr('cancelled', 'unsubscribed'));
				for (const x of this.subs.values())
					if (x.filter === s.filter)
						return;
				if (this.transport === 'ws')
					this.call({ op: 'unsubscribe',
						    topics: [s.filter] }).catch(noop);
				else if (this.transport === 'sse')
					this.resync();
			};

			if (s.o.snapshot === false)
				s.after = this.lastId;
			if (this.transport === 'ws')
				this.wssub([s]);
			else if (this.transport === 'sse')
				this.resync();
			unsub.ready = s.ready;
			return unsub;
		}

		/* Deliver to each matching subscription that has not had this
		 * event id yet. */
		msg(m) {
			const id = m.event, cur = idsplit(id);
			const last = idsplit(this.lastId);
			let got = id ? this.seen.get(id) : null, out = null;

			if (typeof m.topic !== 'string')
				return;
			if (cur && (!last || cur[0] !== last[0] || cur[1] > last[1]))
				this.lastId = id;
			for (const s of this.subs.values()) {
				const a = idsplit(s.after);
				if (!match(s.filter, m.topic) || got?.includes(s.id) ||
				    (a && cur && a[0] === cur[0] && cur[1] <= a[1]))
					continue;
				if (id && !got) {
					this.seen.set(id, got = []);
					if (this.seen.size > SEEN_MAX)
						this.seen.delete(this.seen.keys().next().value);
				}
				got?.push(s.id);
				s.fn(out || (out = decode(m)));
			}
		}

		/* The history asked for is gone: a fresh snapshot follows. */
		reset(reason) {
			this.seen.clear();
			for (const s of this.subs.values()) {
				s.after = null;
				if (s.o.onReset)
					later(s.o.onReset)(reason);
			}
			this.emit('reset', reason);
		}
	}

	/* ---- tab side of the shared connection -------------------------------- */

	class Shared extends Emitter {
		constructor(url, o, wurl) {
			const w = new SharedWorker(wurl, { name: 'mqgate ' +
				JSON.stringify([base(url), o.transport || 'auto',
						o.token || '', !!o.tokenProvider]) });

			super();
			this.url = url;
			this.o = o;
			this.pubs = new Map();	/* pid -> {res, rej} */
			w.onerror = () => {
				if (!this.ready)
					this.direct();
			};
			this.port = w.port;
			this.port.onmessage = (e) => this.in(e.data);
			this.port.start();
			this.post({ t: 'hello', url: base(url), transport: o.transport,
				    token: o.token, tp: !!o.tokenProvider });
			this.bye = () => this.post({ t: 'bye' });
			G.addEventListener('pagehide', this.bye);
		}

		post(m) {
			this.port?.postMessage(m);
		}

		/* The worker would not start: use a connection of our own. */
		direct() {
			const d = this.d = new Client(this.url, { ...this.o });

			this.port = null;
			d.on('state', (s, tr) => this.set(s, tr));
			d.on('reset', (r) => this.emit('reset', r));
			d.on('error', (e) => this.emit('error', e));
			for (const s of this.subs.values()) {
				s.u = d.subscribe(s.filter, s.fn, s.o);
				s.u.ready.then(s.res, s.rej);
			}
			for (const p of this.pubs.values())
				p.rej(mkerr('unavailable', 'shared worker failed'));
			this.pubs.clear();
		}

		in(m) {
			const s = this.subs.get(m.sid), p = this.pubs.get(m.pid);
			const e = m.code && mkerr(m.code, m.message);

			this.ready = true;
			switch (m.t) {
			case 'state':
				this.set(m.s, m.tr);
				break;
			case 'msg':
				s?.fn(m.m);
				break;
			case 'sub':
				if (!s)
					break;
				if (e)
					this.failed(s, e);
				else
					this.granted(s, m.topics);
				break;
			case 'sreset':
				if (s?.o.onReset)
					later(s.o.onReset)(m.reason);
				break;
			case 'reset':
				this.emit('reset', m.reason);
				break;
			case 'error':
				this.emit('error', e);
				break;
			case 'pub':
				this.pubs.delete(m.pid);
				if (p)
					e ? p.rej(e) : p.res();
				break;
			case 'tok':
				Promise.resolve().then(this.o.tokenProvider).then(
					(token) => this.post({ t: 'tok', n: m.n, token }),
					(x) => this.post({ t: 'tok', n: m.n,
							   error: String(x) }));
				break;
			}
		}

		subscribe(filter, fn, o) {
			const s = this.mksub(filter, fn, o);
			const unsub = () => {
				if (!this.subs.delete(s.id))
					return;
				s.rej(mkerr('cancelled', 'unsubscribed'));
				s.u?.();
				this.post({ t: 'unsub', sid: s.id });
			};

			if (this.d) {
				s.u = this.d.subscribe(s.filter, s.fn, s.o);
				s.u.ready.then(s.res, s.rej);
			} else {
				this.post({ t: 'sub', sid: s.id, f: s.filter,
					    o: { snapshot: s.o.snapshot } });
			}
			unsub.ready = s.ready;
			return unsub;
		}

		publish(topic, payload, o) {
			const pid = ++this.sid;

			if (this.d)
				return this.d.publish(topic, payload, o);
			return new Promise((res, rej) => {
				this.pubs.set(pid, { res, rej });
				this.post({ t: 'pub', pid, topic, payload,
					    o: { qos: o?.qos, retain: o?.retain } });
			});
		}

		close() {
			this.d?.close();
			this.bye();
			G.removeEventListener('pagehide', this.bye);
			this.port = null;
			this.set('closed', null);
		}
	}

	/* ---- entry point ------------------------------------------------------ */

	function connect(url, o) {
		let w;

		if (url && typeof url === 'object')
			({ url, ...o } = url);
		o = { ...o };
		w = o.workerUrl || base(url) + '/mqgate-worker.js';
		if (o.share !== false && typeof SharedWorker === 'function' &&
		    G.location &&
		    new URL(w, G.location.href).origin === G.location.origin) {
			try {
				return new Shared(url, o, w);
			} catch (e) { /* fall through: direct connection */ }
		}
		return new Client(url, o);
	}

	G.mqgate = { version: 1, connect, match };
})(globalThis);
