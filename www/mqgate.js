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
 * API: www/README.md.
 */
(function (G) {
	'use strict';
	if (G.mqgate)
		return;

	var SEEN_MAX = 4096;	/* event ids remembered for de-duplication */
	var QUEUE_MAX = 100;	/* publishes held while disconnected */
	var REQ_TIMEOUT = 30000;
	var PING_EVERY = 25000;
	var noop = function () {};

	function mkerr(code, message) {
		var e = new Error(message || code);
		e.code = code;
		return e;
	}

	/* MQTT filter matching; `$` topics never match a leading wildcard. */
	function match(filter, topic) {
		var f = filter.split('/'), t = topic.split('/'), i;

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
		var i = id ? id.lastIndexOf('-') : -1;
		return i < 0 ? null : [id.slice(0, i), +id.slice(i + 1)];
	}

	function b64dec(s) {
		var b = atob(s), u = new Uint8Array(b.length);
		for (var i = 0; i < b.length; i++)
			u[i] = b.charCodeAt(i);
		return u;
	}

	function b64enc(u) {
		var s = '';
		for (var i = 0; i < u.length; i += 0x8000)
			s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
		return btoa(s);
	}

	/* Message object handed to handlers (shared by them: do not mutate). */
	function decode(m) {
		var o = { topic: m.topic, payload: m.payload, retain: !!m.retain,
			  qos: m.qos | 0, ts: m.ts, event: m.event };
		if (m.encoding === 'base64') {
			o.payload = b64dec(m.payload);
			o.encoding = 'base64';
		}
		return o;
	}

	/* Publish frame body (without op) for any payload type. */
	function pubframe(topic, payload, o) {
		var f = { topic: topic, payload: payload, qos: o.qos | 0,
			  retain: !!o.retain };
		if (payload instanceof ArrayBuffer)
			payload = new Uint8Array(payload);
		if (ArrayBuffer.isView(payload)) {
			f.payload = b64enc(new Uint8Array(payload.buffer,
				payload.byteOffset, payload.byteLength));
			f.encoding = 'base64';
		} else if (payload === undefined || payload === null) {
			f.payload = '';
		}
		return f;
	}

	/* http(s) base of the daemon: explicit url, ws(s):// or the page. */
	function base(url) {
		url = url || (G.location && G.location.origin) || '';
		return String(url).replace(/^ws(s?):/i, 'http$1:')
			.replace(/\/+$/, '').replace(/\/(ws|events)$/, '');
	}

	function qs(pairs) {
		return pairs.filter(function (p) { return p[1] != null; })
			.map(function (p) {
				return p[0] + '=' + encodeURIComponent(p[1]);
			}).join('&');
	}

	function later(fn) {
		return function () {
			var a = arguments;
			try {
				fn.apply(null, a);
			} catch (e) {
				setTimeout(function () { throw e; });
			}
		};
	}

	/* Listener registry shared by both client kinds. */
	function Emitter() {
		this.ls = {};
	}
	Emitter.prototype.on = function (ev, fn) {
		var l = this.ls[ev] || (this.ls[ev] = []);
		l.push(fn);
		return function () {
			var i = l.indexOf(fn);
			if (i >= 0)
				l.splice(i, 1);
		};
	};
	Emitter.prototype.emit = function (ev) {
		var a = [].slice.call(arguments, 1);
		(this.ls[ev] || []).slice().forEach(function (fn) {
			later(fn).apply(null, a);
		});
	};

	/* ---- direct connection ---------------------------------------------- */

	function Client(url, o) {
		Emitter.call(this);
		this.o = o;
		this.base = base(url);
		this.state = 'connecting';
		this.transport = null;
		this.subs = new Map();	/* sid -> sub; owns them */
		this.seen = new Map();	/* event id -> [sid]; bounded */
		this.req = new Map();	/* frame id -> {res, rej, t} */
		this.outq = [];		/* {f, res, rej} until connected */
		this.sid = 0;
		this.rid = 0;
		this.tries = 0;
		this.sticky = false;	/* ws refused, sse worked: stay on sse */
		this.go();
	}
	Client.prototype = Object.create(Emitter.prototype);

	Client.prototype.set = function (s) {
		if (this.state !== s) {
			this.state = s;
			this.emit('state', s, this.transport);
		}
	};

	Client.prototype.go = async function () {
		var o = this.o, t = o.transport || 'auto';

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
	};

	Client.prototype.retry = function () {
		var max = Math.min(30000, 500 * Math.pow(2, this.tries++));

		if (this.closed || this.timer)
			return;
		this.set(this.was ? 'reconnecting' : 'connecting');
		this.timer = setTimeout(this.go.bind(this),
					500 + Math.random() * (max - 500));
	};

	Client.prototype.opened = function (tr) {
		this.transport = tr;
		this.tries = 0;
		this.was = true;
		this.set('open');
		this.outq.splice(0).forEach(function (q) {
			this.send(q.f).then(q.res, q.rej);
		}, this);
	};

	/* The transport died: everything in flight is lost; try again. */
	Client.prototype.dropped = function () {
		var e = mkerr('unavailable', 'connection lost');

		e.lost = true;
		clearInterval(this.pinger);
		this.transport = null;
		this.req.forEach(function (r) { clearTimeout(r.t); r.rej(e); });
		this.req.clear();
		if (!this.closed) {
			this.set('reconnecting');
			this.retry();
		}
	};

	Client.prototype.close = function () {
		this.closed = true;
		clearTimeout(this.timer);
		if (this.ws)
			this.ws.close(1000);
		this.esclose(this.es);
		this.esclose(this.es2);
		this.ws = this.es = this.es2 = null;
		this.dropped();
		this.outq.splice(0).forEach(function (q) {
			q.rej(mkerr('unavailable', 'client closed'));
		});
		this.set('closed');
	};

	/* ---- WebSocket ----------------------------------------------------- */

	Client.prototype.wsopen = function (fallback) {
		var self = this, ws, up = false;
		var u = this.base.replace(/^http/i, 'ws') + '/ws' +
			(this.tok ? '?' + qs([['access_token', this.tok]]) : '');

		try {
			ws = new WebSocket(u, 'mqgate.v1');
		} catch (e) {
			return fallback ? this.sse(true) : this.retry();
		}
		this.ws = ws;
		ws.onopen = function () {
			up = true;
			self.opened('ws');
			self.resume();
			self.pinger = setInterval(function () {
				self.call({ op: 'ping' }, 10000).catch(function () {
					if (self.ws === ws)
						ws.close();
				});
			}, PING_EVERY);
		};
		ws.onmessage = function (e) {
			var m;
			try {
				m = JSON.parse(e.data);
			} catch (x) {
				return;
			}
			self.frame(m);
		};
		ws.onclose = function () {
			if (self.ws !== ws)
				return;
			self.ws = null;
			if (up)
				return self.dropped();
			if (fallback)
				return self.sse(true);
			self.retry();
		};
	};

	Client.prototype.frame = function (m) {
		var r = m.id != null && this.req.get(m.id);

		if (m.op === 'message')
			return this.msg(m);
		if (m.op === 'reset')
			return this.reset(m.reason);
		if (m.op === 'hello')
			return (this.server = m);
		if (r) {
			this.req.delete(m.id);
			clearTimeout(r.t);
			if (m.op === 'error')
				r.rej(mkerr(m.code, m.message));
			else
				r.res(m);
		} else if (m.op === 'error') {
			this.emit('error', mkerr(m.code, m.message));
		}
	};

	/* Send a frame that expects a reply; resolves with the reply. */
	Client.prototype.call = function (f, ms) {
		var self = this, ws = this.ws;

		return new Promise(function (res, rej) {
			var id = ++self.rid;
			if (!ws || ws.readyState !== 1)
				return rej(mkerr('unavailable', 'not connected'));
			f.id = id;
			self.req.set(id, { res: res, rej: rej, t: setTimeout(function () {
				self.req.delete(id);
				rej(mkerr('timeout', 'no reply from server'));
			}, ms || REQ_TIMEOUT) });
			ws.send(JSON.stringify(f));
		});
	};

	/* Publish over whatever is connected now. */
	Client.prototype.send = function (f) {
		var self = this, h = { 'Content-Type': 'application/json' };

		if (this.transport === 'ws')
			return this.call(Object.assign({ op: 'publish' }, f))
				.then(noop);
		if (this.tok)
			h.Authorization = 'Bearer ' + this.tok;
		return fetch(this.base + '/publish', {
			method: 'POST', headers: h, body: JSON.stringify(f)
		}).then(function (r) {
			if (r.ok)
				return;
			return r.json().catch(function () { return {}; })
				.then(function (j) {
					throw mkerr(j.error || 'http_' + r.status,
						    j.message || r.statusText);
				});
		}, function () {
			throw mkerr('unavailable', 'cannot reach ' + self.base);
		});
	};

	Client.prototype.publish = function (topic, payload, o) {
		var f = pubframe(topic, payload, o || {}), q = this.outq;

		if (this.transport)
			return this.send(f);
		if (this.closed || q.length >= QUEUE_MAX)
			return Promise.reject(mkerr('unavailable', 'not connected'));
		return new Promise(function (res, rej) {
			q.push({ f: f, res: res, rej: rej });
		});
	};

	/* (Re)subscribe over a fresh WebSocket: the granted filters resume in
	 * one request from the last event id; new ones get their snapshot. */
	Client.prototype.resume = function () {
		var act = [], fresh = [];

		this.subs.forEach(function (s) {
			(s.ok ? act : fresh).push(s);
		});
		if (act.length)
			this.wssub(act, this.lastId);
		fresh.forEach(function (s) { this.wssub([s]); }, this);
	};

	Client.prototype.wssub = function (subs, since) {
		var self = this, f = { op: 'subscribe', topics: [] };

		subs.forEach(function (s) {
			if (f.topics.indexOf(s.filter) < 0)
				f.topics.push(s.filter);
			if (s.o.snapshot === false && !since)
				f.snapshot = false;
		});
		if (since)
			f.since = since;
		this.call(f).then(function (m) {
			subs.forEach(function (s) { self.granted(s, m.topics); });
		}, function (e) {
			if (e.lost || e.code === 'timeout')
				return;
			if (since && subs.length > 1)	/* find the culprit */
				return subs.forEach(function (s) { self.wssub([s]); });
			subs.forEach(function (s) { self.failed(s, e); });
		});
	};

	Client.prototype.granted = function (s, topics) {
		if (this.subs.get(s.id) !== s)
			return;
		s.ok = true;
		s.res(topics || [s.filter]);
	};

	Client.prototype.failed = function (s, e) {
		if (this.subs.get(s.id) !== s)
			return;
		this.subs.delete(s.id);
		s.rej(e);
		if (s.o.onError)
			later(s.o.onError)(e);
	};

	/* ---- Server-Sent Events --------------------------------------------- */

	Client.prototype.esclose = function (es) {
		if (es)
			es.close();
	};

	/* Open a stream for every subscription. `resync`: the stream replaces
	 * a working one (subscriptions changed) and overlaps it until open. */
	Client.prototype.sse = function (fromws, resync) {
		var self = this, subs = [], topics = [], since = this.lastId;
		var es, up = false, q;

		this.subs.forEach(function (s) {
			subs.push(s);
			if (topics.indexOf(s.filter) < 0)
				topics.push(s.filter);
			if (resync && !s.ok)
				since = null;	/* new filter: take the snapshot */
		});
		if (!topics.length) {
			if (resync) {
				this.esclose(this.es);
				this.es = null;
				return;
			}
			/* Nothing to stream: just check the daemon is there. */
			return fetch(this.base + '/healthz').then(function (r) {
				if (r.status !== 200 && r.status !== 503)
					throw 0;
				if (fromws)
					self.sticky = true;
				self.opened('sse');
			}, function () { self.retry(); });
		}
		q = topics.map(function (t) { return ['topic', t]; });
		q.push(['lastEventId', since], ['access_token', this.tok]);
		q = this.base + '/events?' + qs(q);
		try {
			es = new EventSource(q);
		} catch (e) {
			return this.retry();
		}
		this.esclose(this.es2);
		this.es2 = es;
		es.onopen = function () {
			var old = self.es;
			up = true;
			self.es = es;
			self.es2 = null;
			if (old)
				setTimeout(function () { self.esclose(old); }, 300);
			subs.forEach(function (s) {
				if (!since || s.ok)
					self.granted(s);
			});
			if (!resync) {
				if (fromws)
					self.sticky = true;
				self.opened('sse');
			}
			if (self.subs.size !== subs.length ||
			    subs.some(function (s) { return !s.ok; }))
				self.resync();
		};
		es.onmessage = function (e) {
			var m;
			try {
				m = JSON.parse(e.data);
			} catch (x) {
				return;
			}
			m.event = e.lastEventId;
			self.msg(m);
		};
		es.addEventListener('reset', function (e) {
			var r;
			try {
				r = JSON.parse(e.data).reason;
			} catch (x) {}
			self.reset(r);
		});
		es.onerror = function () {
			es.close();
			if (self.es2 === es)
				self.es2 = null;
			if (up) {
				if (self.es === es) {
					self.es = null;
					self.dropped();
				}
				return;
			}
			self.probe(q, subs, resync, fromws);
		};
	};

	/* A stream would not open: learn why from the HTTP status. A refused
	 * new filter fails its subscriptions; anything else is retried. */
	Client.prototype.probe = function (url, subs, resync, fromws) {
		var self = this, ac = new AbortController();

		fetch(url, { signal: ac.signal }).then(function (r) {
			if (r.ok) {
				ac.abort();
				throw 0;
			}
			return r.json().catch(function () { return {}; })
				.then(function (j) {
					var e = mkerr(j.error || 'http_' + r.status,
						      j.message), n = 0;
					subs.forEach(function (s) {
						if (!s.ok && (r.status === 400 ||
						    r.status === 403) && ++n)
							self.failed(s, e);
					});
					if (!n)
						self.emit('error', e);
					throw n;
				});
		}).catch(function (x) {
			var n = typeof x === 'number' ? x : 0;
			if (resync)
				return setTimeout(self.resync.bind(self),
						  n ? 0 : 1000);
			if (n)
				return self.sse(fromws);
			self.retry();
		});
	};

	/* Subscriptions changed on SSE: reopen once the current turn ends. */
	Client.prototype.resync = function () {
		var self = this;

		if (this.rs)
			return;
		this.rs = true;
		Promise.resolve().then(function () {
			self.rs = false;
			if (self.transport === 'sse' && !self.closed)
				self.sse(false, true);
		});
	};

	/* ---- subscriptions and delivery -------------------------------------- */

	Client.prototype.subscribe = function (filter, fn, o) {
		var self = this, s = { id: ++this.sid, filter: String(filter),
			fn: later(fn), o: o || {} }, unsub;

		s.ready = new Promise(function (res, rej) {
			s.res = res;
			s.rej = rej;
		});
		s.ready.catch(noop);
		if (s.o.snapshot === false)
			s.after = this.lastId;
		this.subs.set(s.id, s);
		if (this.transport === 'ws')
			this.wssub([s]);
		else if (this.transport === 'sse')
			this.resync();
		unsub = function () {
			if (self.subs.get(s.id) !== s)
				return;
			self.subs.delete(s.id);
			s.rej(mkerr('cancelled', 'unsubscribed'));
			for (var x of self.subs.values())
				if (x.filter === s.filter)
					return;
			if (self.transport === 'ws')
				self.call({ op: 'unsubscribe',
					    topics: [s.filter] }).catch(noop);
			else if (self.transport === 'sse')
				self.resync();
		};
		unsub.ready = s.ready;
		return unsub;
	};

	/* Deliver to each matching subscription that has not had this id. */
	Client.prototype.msg = function (m) {
		var id = m.event, got = id ? this.seen.get(id) : null;
		var cur = idsplit(id), last = idsplit(this.lastId), out = null;

		if (typeof m.topic !== 'string')
			return;
		if (cur && (!last || cur[0] !== last[0] || cur[1] > last[1]))
			this.lastId = id;
		for (var s of this.subs.values()) {
			var a = idsplit(s.after);
			if (!match(s.filter, m.topic) ||
			    (got && got.indexOf(s.id) >= 0) ||
			    (a && cur && a[0] === cur[0] && cur[1] <= a[1]))
				continue;
			if (id && !got) {
				this.seen.set(id, got = []);
				if (this.seen.size > SEEN_MAX)
					this.seen.delete(this.seen.keys().next().value);
			}
			if (got)
				got.push(s.id);
			s.fn(out || (out = decode(m)));
		}
	};

	/* The history asked for is gone: a fresh snapshot follows. */
	Client.prototype.reset = function (reason) {
		this.seen.clear();
		this.subs.forEach(function (s) {
			s.after = null;
			if (s.o.onReset)
				later(s.o.onReset)(reason);
		});
		this.emit('reset', reason);
	};

	/* ---- tab side of the shared connection -------------------------------- */

	function Shared(url, o, wurl) {
		var self = this, w;

		Emitter.call(this);
		this.url = url;
		this.o = o;
		this.state = 'connecting';
		this.transport = null;
		this.subs = new Map();	/* sid -> {fn, o, res, rej} */
		this.pubs = new Map();	/* pid -> {res, rej} */
		this.n = 0;
		w = new SharedWorker(wurl, { name: 'mqgate ' +
			JSON.stringify([base(url), o.transport || 'auto',
					o.token || '', !!o.tokenProvider]) });
		w.onerror = function () {
			if (!self.ready)
				self.direct();
		};
		this.port = w.port;
		this.port.onmessage = function (e) { self.in(e.data); };
		this.port.start();
		this.post({ t: 'hello', url: base(url), transport: o.transport,
			    token: o.token, tp: !!o.tokenProvider });
		this.bye = function () { self.post({ t: 'bye' }); };
		G.addEventListener('pagehide', this.bye);
	}
	Shared.prototype = Object.create(Emitter.prototype);

	Shared.prototype.post = function (m) {
		if (this.port)
			this.port.postMessage(m);
	};

	/* The worker would not start: carry on with a connection of our own. */
	Shared.prototype.direct = function () {
		var self = this, d;

		this.port = null;
		d = this.d = new Client(this.url, Object.assign({}, this.o));
		d.on('state', function (s, tr) {
			self.state = s;
			self.transport = tr;
			self.emit('state', s, tr);
		});
		d.on('reset', function (r) { self.emit('reset', r); });
		d.on('error', function (e) { self.emit('error', e); });
		this.subs.forEach(function (s) {
			s.u = d.subscribe(s.filter, s.fn, s.o);
			s.u.ready.then(s.res, s.rej);
		});
		this.pubs.forEach(function (p) {
			p.rej(mkerr('unavailable', 'shared worker failed'));
		});
		this.pubs.clear();
	};

	Shared.prototype.in = function (m) {
		var self = this, s = this.subs.get(m.sid), p;

		this.ready = true;
		switch (m.t) {
		case 'state':
			this.state = m.s;
			this.transport = m.tr;
			this.emit('state', m.s, m.tr);
			break;
		case 'msg':
			if (s)
				s.fn(m.m);
			break;
		case 'sub':
			if (!s)
				break;
			if (m.code) {
				this.subs.delete(m.sid);
				s.rej(mkerr(m.code, m.message));
				if (s.o.onError)
					later(s.o.onError)(mkerr(m.code, m.message));
			} else {
				s.res(m.topics);
			}
			break;
		case 'sreset':
			if (s && s.o.onReset)
				later(s.o.onReset)(m.reason);
			break;
		case 'reset':
			this.emit('reset', m.reason);
			break;
		case 'error':
			this.emit('error', mkerr(m.code, m.message));
			break;
		case 'pub':
			p = this.pubs.get(m.pid);
			this.pubs.delete(m.pid);
			if (p)
				m.code ? p.rej(mkerr(m.code, m.message)) : p.res();
			break;
		case 'tok':
			Promise.resolve().then(this.o.tokenProvider)
				.then(function (t) {
					self.post({ t: 'tok', n: m.n, token: t });
				}, function (e) {
					self.post({ t: 'tok', n: m.n,
						    error: String(e) });
				});
			break;
		}
	};

	Shared.prototype.subscribe = function (filter, fn, o) {
		var self = this, sid = ++this.n, s = { filter: String(filter),
			fn: later(fn), o: o || {} }, unsub;
		var opt = { snapshot: s.o.snapshot };

		s.ready = new Promise(function (res, rej) {
			s.res = res;
			s.rej = rej;
		});
		s.ready.catch(noop);
		this.subs.set(sid, s);
		if (this.d)
			s.u = this.d.subscribe(s.filter, s.fn, s.o);
		else
			this.post({ t: 'sub', sid: sid, f: s.filter, o: opt });
		unsub = function () {
			if (!self.subs.delete(sid))
				return;
			s.rej(mkerr('cancelled', 'unsubscribed'));
			if (s.u)
				s.u();
			self.post({ t: 'unsub', sid: sid });
		};
		unsub.ready = s.u ? s.u.ready : s.ready;
		return unsub;
	};

	Shared.prototype.publish = function (topic, payload, o) {
		var self = this, pid = ++this.n;

		if (this.d)
			return this.d.publish(topic, payload, o);
		return new Promise(function (res, rej) {
			self.pubs.set(pid, { res: res, rej: rej });
			self.post({ t: 'pub', pid: pid, topic: topic,
				    payload: payload, o: o || {} });
		});
	};

	Shared.prototype.close = function () {
		if (this.d)
			this.d.close();
		this.bye();
		G.removeEventListener('pagehide', this.bye);
		this.port = null;
		this.state = 'closed';
		this.emit('state', 'closed', null);
	};

	/* ---- entry point ------------------------------------------------------ */

	function connect(url, o) {
		var w;

		if (url && typeof url === 'object') {
			o = url;
			url = o.url;
		}
		o = Object.assign({}, o);
		w = o.workerUrl || base(url) + '/mqgate-worker.js';
		if (o.share !== false && typeof SharedWorker === 'function' &&
		    G.location && new URL(w, G.location.href).origin ===
		    G.location.origin) {
			try {
				return new Shared(url, o, w);
			} catch (e) { /* fall through: direct connection */ }
		}
		return new Client(url, o);
	}

	G.mqgate = { version: 1, connect: connect, match: match };
	if (typeof module === 'object' && module.exports)
		module.exports = G.mqgate;
})(typeof globalThis !== 'undefined' ? globalThis : self);
