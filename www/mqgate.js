/*
 * mqgate.js - the browser client library for mqgate (browser protocol v1).
 *
 * A classic script with no dependencies: <script src="/mqgate.js"> defines
 * the global `mqgate`; ES modules import it through /mqgate.esm.js; workers
 * use importScripts(). It owns the connection to the daemon (WebSocket, or
 * Server-Sent Events + POST /publish as the fallback), reconnection with
 * jittered backoff and resume by event id, and the per-subscription
 * routing and de-duplication of messages. With tab sharing the connection
 * is www/mqgate-worker.js's, and the worker's port carries the same
 * frames as the WebSocket would (plus `state` and `tok`, see there).
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

	/* Call a user function, if any; its exception is reported, not
	 * propagated. */
	function safe(fn, ...a) {
		try {
			fn?.(...a);
		} catch (e) {
			setTimeout(() => { throw e; });
		}
	}

	/* A JSON object from the daemon; {} when it is not one. */
	function parse(s) {
		try {
			return JSON.parse(s) || {};
		} catch (e) {
			return {};
		}
	}

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

	/* Whether event id `a` is `b` or older: ids are "<epoch>-<seq>", and
	 * ids of different epochs (daemon runs) are not ordered. */
	function upto(a, b) {
		const [x, y] = [a, b].map((id) => /^(.*)-(\d+)$/.exec(id));
		return !!x && !!y && x[1] === y[1] && +x[2] <= +y[2];
	}

	const filters = (subs) => [...new Set([...subs].map((s) => s.filter))];

	/* Message object handed to handlers (shared by them: do not mutate):
	 * the frame's fields but op. From the shared worker a base64 payload
	 * arrives decoded already. */
	function decode(m) {
		const { op, ...o } = m;

		if (o.encoding === 'base64' && typeof o.payload === 'string')
			o.payload = Uint8Array.from(atob(o.payload),
						    (c) => c.charCodeAt(0));
		return o;
	}

	/* Publish frame body (without op) for any payload type. */
	function pubframe(topic, p, o) {
		const f = { topic, payload: p ?? '', qos: o.qos | 0,
			    retain: !!o.retain };
		if (p instanceof ArrayBuffer || ArrayBuffer.isView(p)) {
			p = new Uint8Array(p.buffer || p, p.byteOffset, p.byteLength);
			f.payload = btoa(Array.from(p, (b) => String.fromCharCode(b))
					 .join(''));
			f.encoding = 'base64';
		}
		return f;
	}

	/* http(s) base of the daemon: explicit url, ws(s):// or the page;
	 * without trailing slashes or a /ws or /events path. */
	const base = (url) => String(url || G.location?.origin || '')
		.replace(/^ws(s?):/i, 'http$1:')
		.replace(/(\/ws|\/events)?\/*$/, '');

	const qs = (pairs) => pairs.filter((p) => p[1] != null)
		.map((p) => p[0] + '=' + encodeURIComponent(p[1])).join('&');

	/* Bodies of an error reply from POST /publish or GET /events. */
	const httperr = (r) => r.json().catch(noop).then((j) =>
		mkerr(j?.error || 'http_' + r.status, j?.message || r.statusText));

	class Client {
		ls = {};		/* event -> [listener] */
		subs = new Set();	/* subscriptions; owns them */
		seen = new Map();	/* event id -> [subscription]; bounded */
		req = new Map();	/* frame id -> {res, rej, t} */
		outq = [];		/* {f, res, rej} until connected */
		rid = 0;
		tries = 0;
		state = 'connecting';
		transport = null;

		/* `w`: the shared worker holding the connection, or none to
		 * connect directly. */
		constructor(url, o, w) {
			this.o = o;
			this.base = base(url);
			if (!w)
				return void this.go();
			this.port = w.port;
			this.port.onmessage = (e) => {
				this.ready = true;
				this.frame(e.data);
			};
			/* The worker would not start: use a connection of our own
			 * (what was sent to the worker is lost and redone). */
			w.onerror = () => {
				if (!this.ready) {
					this.port = null;
					this.dropped();
				}
			};
			this.bye = () => this.port?.postMessage({ op: 'bye' });
			G.addEventListener('pagehide', this.bye);
		}

		/* ---- events ---- */

		on(ev, fn) {
			const l = this.ls[ev] ||= [];

			l.push(fn);
			return () => {
				const i = l.indexOf(fn);
				if (i >= 0)
					l.splice(i, 1);
			};
		}

		emit(ev, ...a) {
			for (const fn of [...this.ls[ev] || []])
				safe(fn, ...a);
		}

		set(s, tr) {
			if (this.state !== s || this.transport !== tr) {
				this.state = s;
				this.transport = tr;
				this.emit('state', s, tr);
			}
		}

		/* ---- connection ---- */

		async go() {
			const o = this.o, t = o.transport;

			this.timer = null;
			try {
				this.tok = await (o.tokenProvider ? o.tokenProvider()
					: o.token);
			} catch (e) {
				this.emit('error', e);
				return this.retry();
			}
			if (this.closed)
				return;
			if (t === 'sse' || this.sticky)
				return this.sse();
			this.wsopen(t !== 'ws');	/* auto */
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

		/* Connected. Once SSE worked where the WebSocket did not (`auto`
		 * only gets to SSE that way), it stays on SSE. */
		opened(tr) {
			if (this.closed)
				return;
			this.tries = 0;
			this.was = true;
			this.sticky = tr === 'sse';
			this.set('open', tr);
			for (const q of this.outq.splice(0))
				this.pub(q.f).then(q.res, q.rej);
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
			this.retry();
		}

		close() {
			this.closed = true;
			clearTimeout(this.timer);
			if (this.bye) {
				this.bye();
				G.removeEventListener('pagehide', this.bye);
			}
			this.ws?.close(1000);
			this.es?.close();
			this.es2?.close();
			this.port = null;
			this.dropped();
			for (const q of this.outq.splice(0))
				q.rej(mkerr('unavailable', 'client closed'));
			this.set('closed', null);
		}

		/* ---- frames: WebSocket or the shared worker's port ---- */

		/* Frames with replies reach the daemon (or the worker) now. */
		framed() {
			return this.port || this.transport === 'ws';
		}

		wsopen(fallback) {
			/* refused, or no WebSocket here */
			const fail = () => fallback ? this.sse() : this.retry();
			let ws, up = false;

			try {
				ws = new WebSocket(this.base.replace(/^http/i, 'ws') +
					'/ws?' + qs([['access_token', this.tok]]),
					'mqgate.v1');
			} catch (e) {
				return fail();
			}
			this.ws = ws;
			ws.onopen = () => {
				up = true;
				this.resume();	/* before queued publishes go */
				this.opened('ws');
				this.pinger = setInterval(() => {
					this.call({ op: 'ping' }, 10000).catch(() => {
						if (this.ws === ws)
							ws.close();
					});
				}, 25000);
			};
			ws.onmessage = (e) => this.frame(parse(e.data));
			ws.onclose = () => {
				if (this.ws !== ws)
					return;
				this.ws = null;
				if (up)
					this.dropped();
				else
					fail();
			};
		}

		frame(m) {
			const r = this.req.get(m.id);
			const e = m.op === 'error' && mkerr(m.code, m.message);

			if (m.op === 'message')
				this.msg(m);
			else if (m.op === 'reset')
				this.reset(m.reason);
			else if (m.op === 'state')	/* the worker's connection */
				this.set(m.s, m.tr);
			else if (m.op === 'tok')	/* the worker needs a token */
				Promise.resolve().then(this.o.tokenProvider).then(
					(token) => ({ token }), (x) => ({ error: String(x) }))
					.then((a) => this.port?.postMessage({ op: 'tok',
						n: m.n, ...a }));
			else if (r) {
				this.req.delete(m.id);
				clearTimeout(r.t);
				if (e)
					r.rej(e);
				else
					r.res(m);
			} else if (e) {
				this.emit('error', e);
			}
		}

		/* Send a frame that expects a reply; resolves with the reply.
		 * Through the worker there is no time limit here: the worker's
		 * connection has its own. */
		call(f, ms) {
			const ws = this.ws, port = this.port;

			return new Promise((res, rej) => {
				const id = f.id = ++this.rid, r = { res, rej };
				if (!port && ws?.readyState !== 1)
					return rej(mkerr('unavailable', 'not connected'));
				this.req.set(id, r);
				if (port)
					return port.postMessage(f);
				r.t = setTimeout(() => {
					this.req.delete(id);
					rej(mkerr('timeout', 'no reply from server'));
				}, ms || 30000);
				ws.send(JSON.stringify(f));
			});
		}

		publish(topic, payload, o) {
			return this.pub(pubframe(topic, payload, o || {}));
		}

		/* A publish frame body: sent over whatever is connected, or
		 * queued until connected (the worker hands its tabs' frames
		 * here). */
		pub(f) {
			if (this.framed())
				return this.call({ op: 'publish', ...f }).then(noop);
			if (this.transport)
				return fetch(this.base + '/publish', { method: 'POST',
					headers: { 'Content-Type': 'application/json',
						...this.tok && { Authorization:
								 'Bearer ' + this.tok } },
					body: JSON.stringify(f) }).then(async (r) => {
					if (!r.ok)
						throw await httperr(r);
				}, () => {
					throw mkerr('unavailable',
						    'cannot reach ' + this.base);
				});
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
			const old = [...this.subs].filter((s) => s.ok);

			if (old.length)
				this.wssub(old, this.lastId);
			for (const s of this.subs)
				if (!s.ok)
					this.wssub([s]);
		}

		wssub(subs, since) {
			const f = { op: 'subscribe', topics: filters(subs) };

			if (since)
				f.since = since;
			else if (subs[0].o.snapshot === false)
				f.snapshot = false;
			this.call(f).then((m) => {
				for (const s of subs)
					this.granted(s, m.topics);
			}, (e) => {
				if (e.lost || e.code === 'timeout')
					return;	/* done again on the next connection */
				for (const s of subs) {	/* find the culprit */
					if (subs.length > 1)
						this.wssub([s]);
					else
						this.failed(s, e);
				}
			});
		}

		/* ---- Server-Sent Events ---- */

		/* Open a stream for every subscription, instead of the one
		 * still opening, if any. One that runs (the subscriptions
		 * changed) goes only once the new one is open, so nothing is
		 * lost in between; a new filter then needs a snapshot rather
		 * than a resume. */
		sse() {
			const subs = [...this.subs], topics = filters(subs);
			const since = this.es && subs.some((s) => !s.ok) ? null
				: this.lastId;
			const url = this.base + '/events?' + qs(topics.map((t) =>
				['topic', t]).concat([['lastEventId', since],
						      ['access_token', this.tok]]));
			let es, up = false;

			this.es2?.close();
			this.es2 = null;
			if (this.closed)
				return;
			if (!topics.length) {
				this.es?.close();	/* the last filter went */
				this.es = null;
				/* Nothing to stream: just check the daemon is there
				 * (and stream what was subscribed meanwhile). */
				if (this.transport !== 'sse')
					fetch(this.base + '/healthz').then((r) => {
						if (r.status !== 200 && r.status !== 503)
							throw 0;
						this.opened('sse');
						this.resync();
					}).catch(() => this.retry());
				return;
			}
			try {
				es = this.es2 = new EventSource(url);
			} catch (e) {
				return this.retry();
			}
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
				this.opened('sse');
				if (since && subs.some((s) => !s.ok))
					this.resync();	/* for their snapshots */
			};
			es.onmessage = (e) =>
				this.msg({ ...parse(e.data), event: e.lastEventId });
			es.addEventListener('reset',
					    (e) => this.reset(parse(e.data).reason));
			es.onerror = () => {
				es.close();
				if (this.es2 === es)
					this.es2 = null;
				if (!up)
					this.probe(url, subs);
				else if (this.es === es) {
					this.es = null;
					this.dropped();
				}
			};
		}

		/* A stream would not open: learn why from the HTTP status. A
		 * refused new filter fails its subscriptions and the stream is
		 * opened again without them; otherwise it is tried again later
		 * (the old stream, if any, runs on meanwhile). */
		probe(url, subs) {
			const ac = new AbortController();

			fetch(url, { signal: ac.signal }).then(async (r) => {
				const e = !r.ok && await httperr(r);
				const bad = r.status === 400 || r.status === 403 ?
					subs.filter((s) => !s.ok) : [];

				ac.abort();
				for (const s of bad)
					this.failed(s, e);
				if (e && !bad.length)
					this.emit('error', e);
				return bad.length;
			}).catch(noop).then((n) => {
				if (n)
					this.sse();
				else if (this.es)
					setTimeout(() => this.resync(), 1000);
				else
					this.retry();
			});
		}

		/* Subscriptions changed on SSE (open or opening): reopen once
		 * this turn ends. */
		resync() {
			if (this.rs)
				return;
			this.rs = true;
			queueMicrotask(() => {
				this.rs = false;
				if (this.transport === 'sse' || this.es2)
					this.sse();
			});
		}

		/* ---- subscriptions and delivery ---- */

		subscribe(filter, fn, o) {
			const s = { filter: String(filter), fn, o: o || {} };
			const unsub = () => {
				if (!this.subs.delete(s))
					return;
				s.rej(mkerr('cancelled', 'unsubscribed'));
				if (filters(this.subs).includes(s.filter))
					return;
				if (this.framed())
					this.call({ op: 'unsubscribe',
						    topics: [s.filter] }).catch(noop);
				else
					this.resync();
			};

			unsub.ready = s.ready = new Promise((res, rej) => {
				s.res = res;
				s.rej = rej;
			});
			s.ready.catch(noop);
			this.subs.add(s);
			if (s.o.snapshot === false)
				s.after = this.lastId;
			if (this.framed())
				this.wssub([s]);
			else
				this.resync();
			return unsub;
		}

		granted(s, topics) {
			if (this.subs.has(s)) {
				s.ok = true;
				s.res(topics || [s.filter]);
			}
		}

		failed(s, e) {
			if (this.subs.delete(s)) {
				s.rej(e);
				safe(s.o.onError, e);
			}
		}

		/* Deliver to each matching subscription that has not had this
		 * event id yet (nor, with snapshot: false, an older one). */
		msg(m) {
			const id = m.event;
			let got = this.seen.get(id), out;

			if (typeof m.topic !== 'string')
				return;
			if (id && !upto(id, this.lastId))
				this.lastId = id;
			for (const s of this.subs) {
				if (!match(s.filter, m.topic) || got?.includes(s) ||
				    upto(id, s.after))
					continue;
				if (id && !got) {
					this.seen.set(id, got = []);
					if (this.seen.size > SEEN_MAX)
						this.seen.delete(this.seen.keys().next().value);
				}
				got?.push(s);
				safe(s.fn, out ||= decode(m));
			}
		}

		/* The history asked for is gone: a fresh snapshot follows. */
		reset(reason) {
			this.seen.clear();
			for (const s of this.subs) {
				s.after = null;
				safe(s.o.onReset, reason);
			}
			this.emit('reset', reason);
		}
	}

	/* With `share`, the connection is a shared worker's: one per daemon
	 * URL and settings, which its name carries after the version of
	 * what tabs and worker say to each other (so that a tab never joins
	 * a worker of an older release still running for other tabs). Where
	 * there is no SharedWorker, or the worker URL is of another origin,
	 * the constructor throws and the tab connects directly. */
	function connect(url, o) {
		let w;

		if (url && typeof url === 'object')
			({ url, ...o } = url);
		o = { ...o };
		try {
			if (o.share !== false)
				w = new SharedWorker(o.workerUrl || base(url) +
						     '/mqgate-worker.js', { name: 'mqgate/2 ' +
					JSON.stringify([base(url), o.transport || 'auto',
							o.token || '', !!o.tokenProvider]) });
		} catch (e) { /* a direct connection */ }
		return new Client(url, o, w);
	}

	G.mqgate = { version: 1, connect, match };
})(globalThis);
