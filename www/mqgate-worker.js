/*
 * mqgate-worker.js - the SharedWorker that lets every tab of an origin
 * share one mqgate connection. mqgate.connect() starts it (share: true);
 * it runs the same client code (mqgate.js) with a direct connection and
 * relays subscriptions, messages, publishes and state over each tab's
 * MessagePort. It owns that one client and, per port, the tab's
 * subscriptions: a tab that says `bye` (pagehide) or whose port closes
 * loses them, and the connection closes with the last tab.
 */
/* global mqgate */
importScripts('mqgate.js');

var client = null;
var ports = new Set();
var tokwait = new Map();	/* n -> {res, rej, t}: token asked of a tab */
var tokn = 0;

function bcast(m) {
	ports.forEach(function (p) { p.postMessage(m); });
}

/* The client's tokenProvider: ask a tab that has one. */
function asktoken() {
	return new Promise(function (res, rej) {
		var n = ++tokn, p = null;

		ports.forEach(function (x) {
			if (x.tp && !p)
				p = x;
		});
		if (!p)
			return rej(new Error('no tab can provide a token'));
		tokwait.set(n, { res: res, rej: rej, t: setTimeout(function () {
			tokwait.delete(n);
			rej(new Error('token request timed out'));
		}, 10000) });
		p.postMessage({ t: 'tok', n: n });
	});
}

function start(d) {
	client = mqgate.connect(d.url, { share: false, token: d.token,
		transport: d.transport, tokenProvider: d.tp ? asktoken : null });
	client.on('state', function (s, tr) {
		bcast({ t: 'state', s: s, tr: tr });
	});
	client.on('reset', function (r) { bcast({ t: 'reset', reason: r }); });
	client.on('error', function (e) {
		bcast({ t: 'error', code: e.code || 'internal',
			message: e.message });
	});
}

function drop(p) {
	if (!ports.delete(p))
		return;
	p.subs.forEach(function (u) { u(); });
	p.subs.clear();
	p.close();
	if (!ports.size && client) {
		client.close();
		client = null;
	}
}

function handle(p, d) {
	var u, w;

	switch (d.t) {
	case 'hello':
		p.tp = d.tp;
		if (!client)
			start(d);
		p.postMessage({ t: 'state', s: client.state,
				tr: client.transport });
		break;
	case 'sub':
		if (!client || p.subs.has(d.sid))
			break;
		u = client.subscribe(d.f, function (m) {
			p.postMessage({ t: 'msg', sid: d.sid, m: m });
		}, { snapshot: d.o && d.o.snapshot, onReset: function (r) {
			p.postMessage({ t: 'sreset', sid: d.sid, reason: r });
		} });
		p.subs.set(d.sid, u);
		u.ready.then(function (topics) {
			p.postMessage({ t: 'sub', sid: d.sid, topics: topics });
		}, function (e) {
			p.subs.delete(d.sid);
			if (e.code !== 'cancelled')
				p.postMessage({ t: 'sub', sid: d.sid,
						code: e.code, message: e.message });
		});
		break;
	case 'unsub':
		u = p.subs.get(d.sid);
		if (u) {
			p.subs.delete(d.sid);
			u();
		}
		break;
	case 'pub':
		if (!client)
			break;
		client.publish(d.topic, d.payload, d.o).then(function () {
			p.postMessage({ t: 'pub', pid: d.pid });
		}, function (e) {
			p.postMessage({ t: 'pub', pid: d.pid,
					code: e.code || 'internal',
					message: e.message });
		});
		break;
	case 'tok':
		w = tokwait.get(d.n);
		if (!w)
			break;
		tokwait.delete(d.n);
		clearTimeout(w.t);
		if (d.error)
			w.rej(new Error(d.error));
		else
			w.res(d.token);
		break;
	case 'bye':
		drop(p);
		break;
	}
}

self.onconnect = function (e) {
	var p = e.ports[0];

	p.subs = new Map();	/* sid -> unsubscribe function */
	ports.add(p);
	p.onmessage = function (ev) { handle(p, ev.data); };
	p.addEventListener('close', function () { drop(p); });
	p.start();
};
