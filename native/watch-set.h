#ifndef SHUMA_WATCH_SET_H
#define SHUMA_WATCH_SET_H

#include <stdbool.h>
#include <stdint.h>

/* The descriptors the loop's thread watches for the addon (a child's pidfd, its output pipes),
 * in one epoll set of the addon's own that the loop polls as one handle (watch-set.c). */
struct addon_state;

struct watch_entry {
  /* Called on the loop's thread with the epoll events, while the entry is in the set. */
  void (*ready)(struct watch_entry *entry, uint32_t events);
  /* The set has let go (after watch_set_remove): the owner may free the entry now. */
  void (*dropped)(struct watch_entry *entry);
  int fd;
  bool in_set;
  struct watch_entry *next_dropped;
};

/* Adds `entry` (entry->fd, level-triggered, readable); 0, or an errno. */
int watch_set_add(struct addon_state *state, struct watch_entry *entry);

/* Takes `entry` out of the set, before its descriptor is closed or handed on (it may be added again). */
void watch_set_remove(struct addon_state *state, struct watch_entry *entry);

/* Takes the entry out (if in) and lets go of it: its `dropped` comes now, or after the batch of
 * events being handed out, which may still name it. */
void watch_set_drop(struct addon_state *state, struct watch_entry *entry);

/* The environment is going away (after every entry was removed). */
void watch_set_close(struct addon_state *state);

#endif
