/*
 * dashboard.js - behaviour of the mqgate dashboard (index.html): connects
 * with mqgate.js, keeps the topic tree (live values, relative update
 * times, a sparkline per numeric value or numeric JSON field), the list of
 * subscriptions and the publish form. It owns the tree and its DOM; the
 * tree is capped at MAX_TOPICS topics and each series at SERIES_LEN points.
 */
(function () {
	'use strict';

	var MAX_TOPICS = 5000;
	var SERIES_LEN = 60;
	var MAX_FIELDS = 8;

	var $ = function (id) { return document.getElementById(id); };
	var params = new URLSearchParams(location.search +
					 '&' + location.hash.slice(1));
	var client = mqgate.connect(params.get('url') || undefined, {
		token: params.get('token') || undefined,
		transport: params.get('transport') || 'auto'
	});
	var root = { kids: new Map(), el: null, box: $('tree'), path: '' };
	var nodes = new Map();	/* topic -> node with a message */
	var dirty = new Map();	/* topic -> node awaiting a repaint */
	var subs = new Map();	/* filter -> {unsub, li} */
	var ntopics = 0;
	var full = false;

	function h(tag, cls, text) {
		var e = document.createElement(tag);
		if (cls)
			e.className = cls;
		if (text != null)
			e.textContent = text;
		return e;
	}

	function svg(tag, attrs) {
		var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
		for (var k in attrs)
			e.setAttribute(k, attrs[k]);
		return e;
	}

	/* ---- connection status ---- */

	var LABEL = { connecting: 'Connecting…', open: 'Connected',
		      reconnecting: 'Reconnecting…', closed: 'Disconnected' };

	function showstate(s, tr) {
		var st = $('status');
		st.dataset.state = s;
		st.dataset.transport = tr || '';
		$('status-label').textContent = LABEL[s] + (s === 'open' && tr ?
			' · ' + (tr === 'ws' ? 'WebSocket' : 'SSE') : '');
	}
	client.on('state', showstate);
	showstate(client.state, client.transport);

	/* ---- formatting ---- */

	function ago(ts) {
		var s = Math.max(0, Math.round((Date.now() - ts) / 1000));
		if (s < 2)
			return 'just now';
		if (s < 60)
			return s + 's ago';
		if (s < 3600)
			return Math.floor(s / 60) + 'm ago';
		if (s < 86400)
			return Math.floor(s / 3600) + 'h ago';
		return Math.floor(s / 86400) + 'd ago';
	}

	function show(m) {
		var p = m.payload;
		if (p instanceof Uint8Array) {
			var hex = Array.prototype.slice.call(p, 0, 24).map(function (b) {
				return (b < 16 ? '0' : '') + b.toString(16);
			}).join(' ');
			return hex + (p.length > 24 ? ' …' : '') +
				' (' + p.length + ' bytes)';
		}
		return typeof p === 'string' ? p : JSON.stringify(p);
	}

	function fmt(v) {
		return Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-3) ?
			v.toExponential(2) : String(+v.toFixed(3));
	}

	/* Numbers in a payload: [[field, value]]; '' for a bare number. */
	function numbers(p) {
		var out = [];

		(function walk(v, key, depth) {
			if (out.length >= MAX_FIELDS)
				return;
			if (typeof v === 'number' && isFinite(v))
				out.push([key, v]);
			else if (v && typeof v === 'object' && depth < 3 &&
				 !(v instanceof Uint8Array))
				Object.keys(v).forEach(function (k) {
					walk(v[k], key ? key + '.' + k : k, depth + 1);
				});
		})(p, '', 0);
		return out;
	}

	/* ---- the tree ---- */

	function mknode(parent, name) {
		var n = { name: name, kids: new Map(), parent: parent,
			  path: parent.path ? parent.path + '/' + name : name,
			  depth: parent.el ? parent.depth + 1 : 0,
			  series: new Map() };
		var row = h('div', 'trow'), nm = h('span', 'name'), tog = h('span', 'tog');
		var after = null;

		n.el = h('div', 'node leaf');
		n.el.setAttribute('role', 'treeitem');
		nm.append(tog, h('span', 'label', name === '' ? '""' : name));
		n.val = h('span', 'val');
		n.meta = h('span', 'meta');
		n.sparks = h('div', 'sparks');
		row.append(nm, n.val, n.meta, n.sparks);
		n.box = h('div', 'kids');
		n.el.append(row, n.box);
		n.row = row;
		row.style.setProperty('--d', n.depth);
		nm.title = n.path;
		nm.onclick = function () {
			if (n.kids.size)
				n.el.classList.toggle('collapsed');
		};
		row.ondblclick = function () { $('pub-topic').value = n.path; };
		/* Keep siblings sorted by name. */
		parent.kids.forEach(function (k, key) {
			if (!after && key > name)
				after = k.el;
		});
		parent.kids.set(name, n);
		parent.box.insertBefore(n.el, after);
		if (parent.el)
			parent.el.classList.remove('leaf');
		return n;
	}

	function lookup(topic, create) {
		var n = root, parts = topic.split('/');

		for (var i = 0; i < parts.length; i++) {
			var k = n.kids.get(parts[i]);
			if (!k) {
				if (!create)
					return null;
				k = mknode(n, parts[i]);
			}
			n = k;
		}
		return n;
	}

	function count() {
		$('count').textContent = ntopics + (ntopics === 1 ? ' topic' :
			' topics') + (full ? ' (limit reached)' : '');
		$('empty').classList.toggle('hidden', ntopics > 0);
	}

	function onmessage(m) {
		var n = nodes.get(m.topic);

		if (!n) {
			if (ntopics >= MAX_TOPICS) {
				full = true;
				return count();
			}
			n = lookup(m.topic, true);
			nodes.set(m.topic, n);
			n.row.dataset.topic = m.topic;
			ntopics++;
			count();
		}
		n.msg = m;
		numbers(m.payload).forEach(function (f) {
			var s = n.series.get(f[0]);
			if (!s) {
				if (n.series.size >= MAX_FIELDS)
					return;
				n.series.set(f[0], s = { vals: [] });
			}
			s.vals.push(f[1]);
			if (s.vals.length > SERIES_LEN)
				s.vals.shift();
		});
		dirty.set(m.topic, n);
		if (dirty.size === 1)
			requestAnimationFrame(paint);
	}

	/* The series' graph, its points spread over the whole width; it
	 * has at least two values. */
	function sparkline(s, key) {
		var W = 120, H = 26, v = s.vals, lo = Math.min.apply(null, v);
		var hi = Math.max.apply(null, v), span = hi - lo || 1, pts, x, y;

		if (!s.el) {
			s.el = h('span', 'spark');
			if (key)
				s.el.append(h('span', 'k', key));
			s.svg = svg('svg', { viewBox: '0 0 ' + W + ' ' + H,
					     preserveAspectRatio: 'none' });
			s.area = svg('path', {});
			s.line = svg('polyline', {});
			s.dot = svg('circle', { r: 2.2 });
			s.svg.append(s.area, s.line, s.dot);
			s.num = h('span', 'v');
			s.el.append(s.svg);
			if (key)	/* a bare number is the value itself */
				s.el.append(s.num);
		}
		pts = v.map(function (val, i) {
			x = i * W / (v.length - 1);
			y = H - 2 - (val - lo) / span * (H - 4);
			return x.toFixed(1) + ',' + y.toFixed(1);
		});
		s.line.setAttribute('points', pts.join(' '));
		s.area.setAttribute('d', 'M' + pts[0].split(',')[0] + ',' + H +
			' L' + pts.join(' L') + ' L' + W + ',' + H + 'Z');
		s.dot.setAttribute('cx', x);
		s.dot.setAttribute('cy', y);
		s.num.textContent = fmt(v[v.length - 1]);
		s.el.title = (key || 'value') + ': min ' + fmt(lo) + ', max ' +
			fmt(hi) + ' (last ' + v.length + ')';
		return s.el;
	}

	function paint() {
		dirty.forEach(function (n) {
			var m = n.msg, text = show(m);

			n.val.textContent = text;
			n.val.title = text.length > 80 ? text.slice(0, 2000) : '';
			n.val.classList.toggle('bin', m.payload instanceof Uint8Array);
			n.meta.textContent = '';
			if (m.retain)
				n.meta.append(h('span', 'badge', 'R'));
			if (m.qos)
				n.meta.append(h('span', 'badge', 'Q' + m.qos));
			n.ago = h('span', 'ago', ago(m.ts));
			n.ago.title = new Date(m.ts).toLocaleString();
			n.meta.append(n.ago);
			n.series.forEach(function (s, key) {
				var e;
				if (s.vals.length < 2)	/* one value: no trend */
					return;
				e = sparkline(s, key);
				if (e.parentNode !== n.sparks)
					n.sparks.append(e);
			});
			n.row.classList.remove('flash');
			void n.row.offsetWidth;	/* restart the animation */
			n.row.classList.add('flash');
		});
		dirty.clear();
	}

	setInterval(function () {
		nodes.forEach(function (n) {
			if (n.ago)
				n.ago.textContent = ago(n.msg.ts);
		});
	}, 1000);

	function clear() {
		root.kids.clear();
		root.box.textContent = '';
		nodes.clear();
		dirty.clear();
		ntopics = 0;
		full = false;
		count();
	}

	/* Drop topics no remaining subscription covers. */
	function prune() {
		nodes.forEach(function (n, topic) {
			for (var f of subs.keys())
				if (mqgate.match(f, topic))
					return;
			nodes.delete(topic);
			dirty.delete(topic);
			ntopics--;
			delete n.row.dataset.topic;
			n.msg = null;
			n.series.clear();
			n.val.textContent = n.meta.textContent = n.sparks.textContent = '';
			while (n !== root && !n.msg && !n.kids.size) {
				n.parent.kids.delete(n.name);
				n.el.remove();
				if (n.parent !== root && !n.parent.kids.size)
					n.parent.el.classList.add('leaf');
				n = n.parent;
			}
		});
		count();
	}

	/* ---- subscriptions ---- */

	function result(el, kind, text) {
		el.dataset.result = kind;
		el.textContent = text;
	}

	function subscribe(filter) {
		var li, x, unsub;

		if (!filter || subs.has(filter))
			return;
		li = h('li', 'pending', filter);
		x = h('button', null, '×');
		x.type = 'button';
		x.title = 'Unsubscribe ' + filter;
		li.append(x);
		$('subs').append(li);
		unsub = client.subscribe(filter, onmessage, { onReset: clear });
		subs.set(filter, { unsub: unsub, li: li });
		x.onclick = function () {
			unsub();
			li.remove();
			subs.delete(filter);
			prune();
		};
		unsub.ready.then(function () {
			li.classList.remove('pending');
		}, function (e) {
			if (e.code === 'cancelled')
				return;
			li.remove();
			subs.delete(filter);
			result($('sub-result'), 'error', filter + ': ' +
			       (e.code || 'error') + ': ' + e.message);
		});
	}

	$('sub-form').onsubmit = function (ev) {
		ev.preventDefault();
		$('sub-result').textContent = '';
		subscribe($('sub-filter').value.trim());
	};

	/* ---- publish ---- */

	$('pub-form').onsubmit = function (ev) {
		var out = $('pub-result'), btn = $('pub-send'), t0 = performance.now();

		ev.preventDefault();
		btn.disabled = true;
		result(out, 'busy', 'publishing…');
		client.publish($('pub-topic').value, $('pub-payload').value, {
			qos: +$('pub-qos').value, retain: $('pub-retain').checked
		}).then(function () {
			result(out, 'ok', '✓ ok · ' +
			       Math.round(performance.now() - t0) + ' ms');
		}, function (e) {
			result(out, 'error', '✗ ' + (e.code || 'error') +
			       (e.message && e.message !== e.code ?
				': ' + e.message : ''));
		}).then(function () { btn.disabled = false; });
	};

	/* ---- search ---- */

	$('search').oninput = function () {
		var q = this.value.trim().toLowerCase();
		nodes.forEach(function (n, topic) {
			var hide = q && topic.toLowerCase().indexOf(q) < 0;
			n.row.classList.toggle('hidden', !!hide);
		});
	};

	(params.getAll('sub').length ? params.getAll('sub') : ['#'])
		.forEach(subscribe);
	count();
	window.dashboard = { client: client };
})();
