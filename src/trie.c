/*
 * trie.c - the subscription index (see trie.h). Owns every node and
 * entry; borrows the values.
 *
 * One node per filter level. A node keeps its literal children in an
 * open-addressing hash table (linear probing, grown at 3/4 load, shrunk
 * when mostly empty, backward-shift deletion so there are no tombstones),
 * its '+' child in a pointer, and two doubly linked entry lists: `here`
 * (filters that end at this node) and `hash` (filters that end with '#'
 * after this node). An entry knows its node and list, so removing it is
 * O(1); then empty nodes are pruned up towards the root.
 *
 * Matching never allocates and never recurses: it is a depth-first walk
 * that keeps only (node, position in the topic, phase) and goes back up
 * through the parent pointers, recovering the parent's topic position by
 * scanning back over one level. So a topic or filter of 32768 levels
 * costs no stack, and every trie node is visited at most once per match
 * (a node is reached by one path only).
 *
 * The literal hash is keyed with a random per-trie seed, so a given set
 * of level names does not pile up in the same slots in every process. It
 * is a fast mixing hash, not a keyed PRF like SipHash.
 */
#include "trie.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "topic.h"

#define TRIE_MIN_CAP 4u

enum trie_node_kind {
	TRIE_ROOT,
	TRIE_LITERAL,
	TRIE_PLUS,
};

struct trie_node {
	struct trie_node *parent;
	struct trie_node **kids;  /* literal children, open addressing */
	uint32_t nkids, kcap;     /* kcap: 0 or a power of two */
	struct trie_node *plus;   /* the '+' child */
	struct trie_entry *here;  /* filters ending at this node */
	struct trie_entry *hash;  /* filters ending with '#' below it */
	enum trie_node_kind kind;
	uint32_t hv;              /* hash of the level (literal) */
	size_t len;               /* level length (literal) */
	char level[];             /* level bytes (literal), not terminated */
};

struct trie_entry {
	struct trie_entry *prev, *next;
	struct trie_node *node;
	bool in_hash; /* on node->hash rather than node->here */
	void *value;
};

struct trie {
	struct trie_node *root;
	size_t count;
	uint64_t seed[2];
};

/* Seeded 64-bit hash of a level (multiply-xorshift over 8-byte words).
 * Only its low bits are used to pick a slot. */
static uint32_t trie_hash(const struct trie *t, const char *s, size_t len)
{
	uint64_t h = t->seed[0] ^ (len * 0x9e3779b97f4a7c15ull);
	const unsigned char *p = (const unsigned char *)s;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h ^= w + t->seed[1];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, p, len);
		h ^= w + t->seed[1];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

struct trie *trie_new(void)
{
	struct trie *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->root = calloc(1, sizeof(*t->root));
	if (!t->root) {
		free(t);
		return NULL;
	}
	t->root->kind = TRIE_ROOT;
	if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->seed)) {
		/* No entropy yet (early boot): still vary per process. */
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
			     (uint64_t)(uintptr_t)t;
		t->seed[1] = (uint64_t)ts.tv_sec ^ ((uint64_t)ts.tv_nsec << 32);
	}
	return t;
}

/* Frees every entry of a list. */
static void trie_entries_free(struct trie_entry *e)
{
	while (e) {
		struct trie_entry *next = e->next;

		free(e);
		e = next;
	}
}

/* Frees the subtree under n (not n itself), without recursion: descends
 * to a leaf, frees it, and climbs back through the parent pointers. */
static void trie_subtree_free(struct trie_node *top)
{
	struct trie_node *n = top;

	for (;;) {
		struct trie_node *kid = NULL;

		if (n->plus) {
			kid = n->plus;
			n->plus = NULL;
		} else if (n->nkids) {
			/* Take the last used slot; kcap serves as the cursor,
			 * the table is being torn down. */
			while (!n->kids[n->kcap - 1])
				n->kcap--;
			kid = n->kids[--n->kcap];
			n->nkids--;
		}
		if (kid) {
			n = kid;
			continue;
		}
		/* n has no children left. */
		trie_entries_free(n->here);
		trie_entries_free(n->hash);
		free(n->kids);
		n->here = n->hash = NULL;
		n->kids = NULL;
		n->kcap = 0;
		if (n == top)
			return;
		{
			struct trie_node *parent = n->parent;

			free(n);
			n = parent;
		}
	}
}

void trie_free(struct trie *t)
{
	if (!t)
		return;
	trie_subtree_free(t->root);
	free(t->root);
	free(t);
}

/* The literal child of n named [s, s+len), or NULL. */
static struct trie_node *trie_kid_find(const struct trie *t,
				       const struct trie_node *n,
				       const char *s, size_t len)
{
	uint32_t mask, i, hv;

	if (!n->nkids)
		return NULL;
	hv = trie_hash(t, s, len);
	mask = n->kcap - 1;
	for (i = hv & mask; n->kids[i]; i = (i + 1) & mask) {
		const struct trie_node *k = n->kids[i];

		if (k->hv == hv && k->len == len && memcmp(k->level, s, len) == 0)
			return n->kids[i];
	}
	return NULL;
}

/* Puts child c into the table kids[cap] (cap a power of two, a free slot
 * guaranteed). */
static void trie_slot_put(struct trie_node **kids, uint32_t cap,
			  struct trie_node *c)
{
	uint32_t mask = cap - 1, i = c->hv & mask;

	while (kids[i])
		i = (i + 1) & mask;
	kids[i] = c;
}

/* Rehashes n's literal children into a table of cap slots. Returns 0 or
 * -ENOMEM (n unchanged). */
static int trie_kids_resize(struct trie_node *n, uint32_t cap)
{
	struct trie_node **kids = calloc(cap, sizeof(*kids));

	if (!kids)
		return -ENOMEM;
	for (uint32_t i = 0; i < n->kcap; i++)
		if (n->kids[i])
			trie_slot_put(kids, cap, n->kids[i]);
	free(n->kids);
	n->kids = kids;
	n->kcap = cap;
	return 0;
}

/* Adds the literal child c to n. Returns 0 or -ENOMEM. */
static int trie_kid_add(struct trie_node *n, struct trie_node *c)
{
	if ((uint64_t)(n->nkids + 1) * 4 > (uint64_t)n->kcap * 3) {
		uint32_t cap = n->kcap ? n->kcap * 2 : TRIE_MIN_CAP;

		if (cap == 0 || trie_kids_resize(n, cap) < 0)
			return -ENOMEM;
	}
	trie_slot_put(n->kids, n->kcap, c);
	n->nkids++;
	return 0;
}

/* Removes the literal child c from n (backward-shift deletion), and
 * shrinks the table when it is mostly empty. */
static void trie_kid_del(struct trie_node *n, const struct trie_node *c)
{
	uint32_t mask = n->kcap - 1, i = c->hv & mask, j;

	while (n->kids[i] != c)
		i = (i + 1) & mask;
	n->kids[i] = NULL;
	n->nkids--;
	/* Move back any later entry of the cluster whose home slot is not
	 * in (i, j], so that lookups never meet a hole before it. */
	for (j = (i + 1) & mask; n->kids[j]; j = (j + 1) & mask) {
		uint32_t home = n->kids[j]->hv & mask;
		bool stays = i <= j ? (home > i && home <= j)
				    : (home > i || home <= j);

		if (stays)
			continue;
		n->kids[i] = n->kids[j];
		n->kids[j] = NULL;
		i = j;
	}
	if (n->nkids == 0) {
		free(n->kids);
		n->kids = NULL;
		n->kcap = 0;
	} else if (n->kcap > TRIE_MIN_CAP && n->nkids * 8 < n->kcap) {
		/* On ENOMEM the larger table simply stays. */
		(void)trie_kids_resize(n, n->kcap / 2);
	}
}

static bool trie_node_empty(const struct trie_node *n)
{
	return !n->here && !n->hash && !n->plus && !n->nkids;
}

/* Frees n and every ancestor that is left empty, up to the root. */
static void trie_prune(struct trie_node *n)
{
	while (n->kind != TRIE_ROOT && trie_node_empty(n)) {
		struct trie_node *parent = n->parent;

		if (n->kind == TRIE_PLUS)
			parent->plus = NULL;
		else
			trie_kid_del(parent, n);
		free(n->kids);
		free(n);
		n = parent;
	}
}

/* The child of n for the level [s, s+len) ('+' or a literal), created
 * when missing. NULL on ENOMEM. */
static struct trie_node *trie_child_get(struct trie *t, struct trie_node *n,
					const char *s, size_t len)
{
	struct trie_node *c;

	if (len == 1 && s[0] == '+') {
		if (n->plus)
			return n->plus;
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->kind = TRIE_PLUS;
		c->parent = n;
		n->plus = c;
		return c;
	}
	c = trie_kid_find(t, n, s, len);
	if (c)
		return c;
	c = calloc(1, sizeof(*c) + len);
	if (!c)
		return NULL;
	c->kind = TRIE_LITERAL;
	c->parent = n;
	c->hv = trie_hash(t, s, len);
	c->len = len;
	memcpy(c->level, s, len);
	if (trie_kid_add(n, c) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

static void trie_list_push(struct trie_entry **head, struct trie_entry *e)
{
	e->prev = NULL;
	e->next = *head;
	if (*head)
		(*head)->prev = e;
	*head = e;
}

struct trie_entry *trie_add(struct trie *t, const char *filter, void *value)
{
	struct trie_node *n = t->root;
	struct trie_entry *e;
	const char *s = filter;
	size_t flen = strlen(filter);

	if (topic_validate(filter, flen, TOPIC_FILTER, NULL) < 0) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto nomem;
	e->value = value;
	for (;;) {
		const char *end = strchrnul(s, '/');
		size_t len = (size_t)(end - s);
		struct trie_node *c;

		if (len == 1 && s[0] == '#') { /* always the last level */
			e->in_hash = true;
			break;
		}
		c = trie_child_get(t, n, s, len);
		if (!c) {
			trie_prune(n); /* nodes this call made and left empty */
			goto nomem;
		}
		n = c;
		if (!*end)
			break;
		s = end + 1;
	}
	e->node = n;
	trie_list_push(e->in_hash ? &n->hash : &n->here, e);
	t->count++;
	return e;
nomem:
	free(e);
	errno = ENOMEM;
	return NULL;
}

void trie_remove(struct trie *t, struct trie_entry *e)
{
	struct trie_node *n;

	if (!e)
		return;
	n = e->node;
	if (e->prev)
		e->prev->next = e->next;
	else if (e->in_hash)
		n->hash = e->next;
	else
		n->here = e->next;
	if (e->next)
		e->next->prev = e->prev;
	free(e);
	t->count--;
	trie_prune(n);
}

void *trie_entry_value(const struct trie_entry *e)
{
	return e->value;
}

size_t trie_count(const struct trie *t)
{
	return t->count;
}

static void trie_list_visit(const struct trie_entry *e, trie_visit_fn fn,
			    void *arg)
{
	for (; e; e = e->next)
		fn(e->value, arg);
}

/* Where a node's walk stands: entering it, back from its literal child,
 * or back from its '+' child. */
enum trie_phase {
	TRIE_ENTER,
	TRIE_AFTER_LITERAL,
	TRIE_AFTER_PLUS,
};

void trie_match(const struct trie *t, const char *topic, trie_visit_fn fn,
		void *arg)
{
	const struct trie_node *n = t->root;
	const char *s = topic;   /* start of the level n's children take */
	const char *topic_end = topic + strlen(topic);
	bool done = false;       /* n took the topic's last level */
	bool dollar = topic[0] == '$';
	enum trie_phase phase = TRIE_ENTER;

	for (;;) {
		const struct trie_node *c = NULL;
		const char *end = NULL;

		switch (phase) {
		case TRIE_ENTER:
			/* "x/#" matches x's topics with zero or more levels
			 * after x; at the root the '$' rule applies. */
			if (n != t->root || !dollar)
				trie_list_visit(n->hash, fn, arg);
			if (done) {
				trie_list_visit(n->here, fn, arg);
				break; /* go up */
			}
			end = strchrnul(s, '/');
			c = trie_kid_find(t, n, s, (size_t)(end - s));
			if (c)
				break; /* descend into c */
			/* fall through */
		case TRIE_AFTER_LITERAL:
			if (!done && n->plus && (n != t->root || !dollar)) {
				end = strchrnul(s, '/');
				c = n->plus;
			}
			break;
		case TRIE_AFTER_PLUS:
			break;
		}
		if (c) {
			n = c;
			done = !*end;
			s = done ? end : end + 1;
			phase = TRIE_ENTER;
			continue;
		}
		/* Go up: recover the start of the level n took. */
		if (n == t->root)
			return;
		end = done ? topic_end : s - 1;
		s = end;
		while (s > topic && s[-1] != '/')
			s--;
		done = false;
		phase = n->kind == TRIE_PLUS ? TRIE_AFTER_PLUS
					     : TRIE_AFTER_LITERAL;
		n = n->parent;
	}
}
