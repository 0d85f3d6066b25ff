/*
 * mqgate-worker.js - the SharedWorker that lets every tab of an origin
 * share one mqgate connection. mqgate.connect() starts it (share: true),
 * one per daemon URL and settings: its name is "mqgate/2 " (2: the
 * version of the messages below) and the JSON array [url, transport,
 * token, has a tokenProvider]. It runs the client library (mqgate.js)
 * with a direct connection and serves each tab over its MessagePort with
 * the frames of the WebSocket protocol:
 *
 *   tab -> worker: subscribe, unsubscribe, publish (each answered with ok
 *                  or error and the frame's id), tok {n, token | error}
 *                  (the answer to a token request), bye (the tab goes);
 *   worker -> tab: message, reset, error (not tied to a request),
 *                  state {s, tr} (the connection's state and transport,
 *                  first on connect), tok {n} (a token is needed).
 *
 * It owns that one client and, per port, the tab's subscriptions: a tab
 * that says bye or whose port closes loses them, and the connection
 * closes with the last tab.
 */
/* global mqgate */
importScripts('mqgate.js');

const [url, transport, token, tp] =
	JSON.parse(self.name.slice(self.name.indexOf(' ')));
const ports = new Set();
const tokwait = new Map();	/* n -> {res, rej, t}: token asked of a tab */
let client = null;
let tokn = 0;

const bcast = (m) => ports.forEach((p) => p.postMessage(m));
const errframe = (e, id) =>
	({ op: 'error', id, code: e.code || 'internal', message: e.message });

/* The client's tokenProvider: ask a tab (every tab here has one). */
function asktoken() {
	return new Promise((res, rej) => {
		const n = ++tokn, p = ports.values().next().value;

		if (!p)
			return rej(new Error('no tab can provide a token'));
		tokwait.set(n, { res, rej, t: setTimeout(() => {
			tokwait.delete(n);
			rej(new Error('token request timed out'));
		}, 10000) });
		p.postMessage({ op: 'tok', n });
	});
}

function start() {
	client = mqgate.connect(url, { share: false, transport,
		token: token || undefined, tokenProvider: tp ? asktoken : null });
	client.on('state', (s, tr) => bcast({ op: 'state', s, tr }));
	client.on('reset', (reason) => bcast({ op: 'reset', reason }));
	client.on('error', (e) => bcast(errframe(e)));
}

/* Answer frame `f` of port `p` when `done` settles: ok with the fields
 * it resolves with, or the error. */
function reply(p, f, done) {
	done.then((x) => p.postMessage({ op: 'ok', id: f.id, ...x }),
		  (e) => p.postMessage(errframe(e, f.id)));
}

/* A tab's subscribe: one subscription of the client per filter. */
function subscribe(p, f) {
	const us = f.topics.map((t) => {
		const u = client.subscribe(t, (m) =>
			p.postMessage({ op: 'message', ...m }),
			{ snapshot: f.snapshot });
		const set = p.subs.get(t) || new Set();

		p.subs.set(t, set.add(u));
		u.topic = t;
		return u;
	});

	reply(p, f, Promise.all(us.map((u) => u.ready)).then(
		(tt) => ({ topics: tt.flat() }), (e) => {
			for (const u of us) {
				u();
				p.subs.get(u.topic)?.delete(u);
			}
			throw e;
		}));
}

function unsubscribe(p, t) {
	p.subs.get(t)?.forEach((u) => u());
	p.subs.delete(t);
}

function drop(p) {
	if (!ports.delete(p))
		return;
	[...p.subs.keys()].forEach((t) => unsubscribe(p, t));
	p.close();
	if (!ports.size) {
		client.close();
		client = null;
	}
}

function handle(p, f) {
	const w = tokwait.get(f.n);
	const { op, id, ...frame } = f;

	switch (op) {
	case 'subscribe':
		subscribe(p, f);
		break;
	case 'unsubscribe':
		f.topics.forEach((t) => unsubscribe(p, t));
		p.postMessage({ op: 'ok', id });
		break;
	case 'publish':
		reply(p, f, client.pub(frame));
		break;
	case 'tok':
		if (!w)
			break;
		tokwait.delete(f.n);
		clearTimeout(w.t);
		if ('error' in f)
			w.rej(new Error(f.error));
		else
			w.res(f.token);
		break;
	case 'bye':
		drop(p);
		break;
	}
}

self.onconnect = (e) => {
	const p = e.ports[0];

	p.subs = new Map();	/* filter -> Set of unsubscribe functions */
	ports.add(p);
	if (!client)
		start();
	p.onmessage = (ev) => handle(p, ev.data);
	p.addEventListener('close', () => drop(p));
	p.postMessage({ op: 'state', s: client.state, tr: client.transport });
};
