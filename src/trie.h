/*
 * trie.h - subscription index: topic filter -> subscribers, one node per
 * level with literal, '+' and '#' children. Matching a topic walks only
 * the branches that can match, so its cost depends on the topic's depth
 * and the matching filters, not on the number of filters stored.
 * Owns its nodes and entries; borrows the values. Loop thread only.
 */
#ifndef MQGATE_TRIE_H
#define MQGATE_TRIE_H

#include <stddef.h>

struct trie;
struct trie_entry; /* one (filter, value) pair; the handle to remove it */

struct trie *trie_new(void);
/* Frees every node and entry; the values are not touched. */
void trie_free(struct trie *t);

/* Adds value under the valid filter `filter`. The same (filter, value)
 * may be added twice and then yields two entries. NULL on ENOMEM. */
struct trie_entry *trie_add(struct trie *t, const char *filter, void *value);
/* Removes an entry returned by trie_add, in O(1) plus pruning of empty
 * nodes. */
void trie_remove(struct trie *t, struct trie_entry *e);
void *trie_entry_value(const struct trie_entry *e);

/* Calls fn(value, arg) for every entry whose filter matches the valid
 * topic name `topic` ($-rule included). fn must not modify the trie. */
typedef void (*trie_visit_fn)(void *value, void *arg);
void trie_match(const struct trie *t, const char *topic, trie_visit_fn fn,
		void *arg);

size_t trie_count(const struct trie *t); /* entries */

#endif
