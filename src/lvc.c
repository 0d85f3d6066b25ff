/*
 * lvc.c - the last-value cache (see lvc.h).
 *
 * Topics are stored as a tree of levels. A node knows its parent and its
 * children (a sibling list, for wildcard walks); a literal child is found
 * through one hash table of edges keyed by (parent, level), so nodes carry
 * no table of their own. Nodes holding a message are also on an LRU list
 * that eviction takes from the front. Walks are iterative (an explicit
 * stack for '+', parent links for '#'), so deep topics cannot exhaust the
 * C stack.
 */
#include "lvc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

struct lvc_node {
	struct lvc_node *parent;
	struct lvc_node *child, *next, *prev;   /* children; siblings */
	struct lvc_node *hnext;                 /* edge hash chain */
	struct lvc_node *lru_prev, *lru_next;   /* only while m != NULL */
	struct msg *m;
	uint32_t hash;
	size_t len;
	char level[];
};

struct lvc {
	struct lvc_node *root;         /* the empty level above all */
	struct lvc_node **buckets;
	size_t nbuckets, nnodes;
	struct lvc_node *lru_head, *lru_tail;   /* head = least recent */
	size_t count, bytes;
	size_t max_topics, max_bytes;
};

static uint32_t lvc_hash(const struct lvc_node *parent, const char *s,
			 size_t len)
{
	uint64_t h = 1469598103934665603ull ^ (uintptr_t)parent;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return (uint32_t)(h ^ (h >> 32));
}

struct lvc *lvc_new(size_t max_topics, size_t max_bytes)
{
	struct lvc *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = 64;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->root = calloc(1, sizeof(*c->root));
	if (!c->buckets || !c->root) {
		free(c->buckets);
		free(c->root);
		free(c);
		return NULL;
	}
	c->max_topics = max_topics;
	c->max_bytes = max_bytes;
	return c;
}

static struct lvc_node *lvc_child(const struct lvc *c,
				  const struct lvc_node *parent,
				  const char *s, size_t len)
{
	uint32_t h = lvc_hash(parent, s, len);
	struct lvc_node *n;

	for (n = c->buckets[h & (c->nbuckets - 1)]; n; n = n->hnext)
		if (n->hash == h && n->parent == parent && n->len == len &&
		    memcmp(n->level, s, len) == 0)
			return n;
	return NULL;
}

static void lvc_rehash(struct lvc *c)
{
	size_t nb = c->nbuckets * 2, i;
	struct lvc_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* chains just grow longer */
	for (i = 0; i < c->nbuckets; i++) {
		struct lvc_node *n = c->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = nb;
}

static struct lvc_node *lvc_child_add(struct lvc *c, struct lvc_node *parent,
				      const char *s, size_t len)
{
	struct lvc_node *n = calloc(1, sizeof(*n) + len);
	size_t b;

	if (!n)
		return NULL;
	memcpy(n->level, s, len);
	n->len = len;
	n->parent = parent;
	n->hash = lvc_hash(parent, s, len);
	n->next = parent->child;
	if (parent->child)
		parent->child->prev = n;
	parent->child = n;
	b = n->hash & (c->nbuckets - 1);
	n->hnext = c->buckets[b];
	c->buckets[b] = n;
	if (++c->nnodes > c->nbuckets)
		lvc_rehash(c);
	return n;
}

/* Frees n and its ancestors while they hold neither message nor child. */
static void lvc_prune(struct lvc *c, struct lvc_node *n)
{
	while (n != c->root && !n->m && !n->child) {
		struct lvc_node *parent = n->parent, **pp;

		pp = &c->buckets[n->hash & (c->nbuckets - 1)];
		while (*pp != n)
			pp = &(*pp)->hnext;
		*pp = n->hnext;
		if (n->prev)
			n->prev->next = n->next;
		else
			parent->child = n->next;
		if (n->next)
			n->next->prev = n->prev;
		c->nnodes--;
		free(n);
		n = parent;
	}
}

static void lvc_lru_unlink(struct lvc *c, struct lvc_node *n)
{
	if (n->lru_prev)
		n->lru_prev->lru_next = n->lru_next;
	else
		c->lru_head = n->lru_next;
	if (n->lru_next)
		n->lru_next->lru_prev = n->lru_prev;
	else
		c->lru_tail = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
}

static void lvc_lru_append(struct lvc *c, struct lvc_node *n)
{
	n->lru_prev = c->lru_tail;
	n->lru_next = NULL;
	if (c->lru_tail)
		c->lru_tail->lru_next = n;
	else
		c->lru_head = n;
	c->lru_tail = n;
}

/* Drops n's message; the node stays (the caller prunes). */
static void lvc_clear(struct lvc *c, struct lvc_node *n)
{
	lvc_lru_unlink(c, n);
	c->bytes -= msg_cost(n->m);
	c->count--;
	msg_unref(n->m);
	n->m = NULL;
}

static void lvc_fit(struct lvc *c)
{
	while (c->lru_head &&
	       (c->count > c->max_topics || c->bytes > c->max_bytes)) {
		struct lvc_node *n = c->lru_head;

		lvc_clear(c, n);
		lvc_prune(c, n);
	}
}

void lvc_set_limits(struct lvc *c, size_t max_topics, size_t max_bytes)
{
	c->max_topics = max_topics;
	c->max_bytes = max_bytes;
	lvc_fit(c);
}

void lvc_free(struct lvc *c)
{
	if (!c)
		return;
	lvc_set_limits(c, 0, 0);
	free(c->root);
	free(c->buckets);
	free(c);
}

/* The node of topic, created when `create`; NULL when absent or ENOMEM
 * (then nodes made on the way are pruned again). */
static struct lvc_node *lvc_find(struct lvc *c, const char *topic,
				 bool create)
{
	struct lvc_node *n = c->root;
	const char *s = topic;

	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		struct lvc_node *child = lvc_child(c, n, s, len);

		if (!child) {
			if (!create || !(child = lvc_child_add(c, n, s, len))) {
				if (create)
					lvc_prune(c, n);
				return NULL;
			}
		}
		n = child;
		if (!slash)
			return n;
		s = slash + 1;
	}
}

int lvc_put(struct lvc *c, struct msg *m)
{
	struct lvc_node *n;

	if (m->empty && m->retain) {
		n = lvc_find(c, m->topic, false);
		if (n && n->m) {
			lvc_clear(c, n);
			lvc_prune(c, n);
		}
		return 0;
	}
	if (!c->max_topics || msg_cost(m) > c->max_bytes)
		return 0;
	n = lvc_find(c, m->topic, true);
	if (!n)
		return -ENOMEM;
	if (n->m)
		lvc_clear(c, n);
	n->m = msg_ref(m);
	c->bytes += msg_cost(m);
	c->count++;
	lvc_lru_append(c, n);
	lvc_fit(c);
	return 0;
}

/* ---- matching ----------------------------------------------------------- */

struct lvc_walk {
	const struct lvc_node *node;
	const char *rest;   /* filter levels still to match; NULL = none */
};

static bool lvc_is_dollar(const struct lvc *c, const struct lvc_node *n)
{
	return n->parent == c->root && n->len && n->level[0] == '$';
}

/* Visits every message in n's subtree, n included (the '#' case). */
static void lvc_visit_subtree(const struct lvc *c, const struct lvc_node *top,
			      lvc_visit_fn fn, void *arg)
{
	const struct lvc_node *n = top;

	for (;;) {
		if (n->m)
			fn(n->m, arg);
		if (n->child) {
			n = n->child;
		} else {
			while (n != top && !n->next)
				n = n->parent;
			if (n == top)
				return;
			n = n->next;
		}
		/* '#' at the first level never matches '$' topics. */
		while (top == c->root && n && n->parent == top &&
		       lvc_is_dollar(c, n))
			n = n->next;
		if (!n)
			return;
	}
}

void lvc_match(const struct lvc *c, const char *filter, lvc_visit_fn fn,
	       void *arg)
{
	struct lvc_walk *stack;
	size_t cap = 16, top = 0;

	stack = malloc(cap * sizeof(*stack));
	if (!stack)
		return;
	stack[top++] = (struct lvc_walk){ c->root, filter };
	while (top) {
		struct lvc_walk w = stack[--top];
		const char *slash;
		size_t len;

		if (!w.rest) {
			if (w.node->m)
				fn(w.node->m, arg);
			continue;
		}
		slash = strchr(w.rest, '/');
		len = slash ? (size_t)(slash - w.rest) : strlen(w.rest);
		if (len == 1 && w.rest[0] == '#') {
			lvc_visit_subtree(c, w.node, fn, arg);
		} else if (len == 1 && w.rest[0] == '+') {
			const struct lvc_node *ch;

			for (ch = w.node->child; ch; ch = ch->next) {
				if (w.node == c->root && lvc_is_dollar(c, ch))
					continue;
				if (top == cap) {
					struct lvc_walk *ns = realloc(stack, 2 * cap * sizeof(*ns));

					if (!ns)
						goto out;
					stack = ns;
					cap *= 2;
				}
				stack[top++] = (struct lvc_walk){ ch, slash ? slash + 1 : NULL };
			}
		} else {
			const struct lvc_node *ch = lvc_child(c, w.node, w.rest, len);

			if (ch)
				stack[top++] = (struct lvc_walk){ ch, slash ? slash + 1 : NULL };
		}
	}
out:
	free(stack);
}

size_t lvc_count(const struct lvc *c)
{
	return c->count;
}

size_t lvc_bytes(const struct lvc *c)
{
	return c->bytes;
}
