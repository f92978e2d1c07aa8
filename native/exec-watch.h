#ifndef SHUMA_EXEC_WATCH_H
#define SHUMA_EXEC_WATCH_H

/* What a child cloned beside its parent thread (no CLONE_VFORK: addon.c's spawnAsync) needs for
 * the loop to learn when it has exec'd: a close-on-exec pipe, watched in the loop's watch set, and
 * a stack of its own until then (exec-watch.c). */
struct addon_state;
struct exec_watch;

/* On the loop: the pipe and a stack; `execd(arg)` is called on the loop once every write end is
 * closed (the child exec'd or exited, or the clone failed). NULL, errno set, on failure. */
struct exec_watch *exec_watch_open(struct addon_state *state, void (*execd)(void *arg), void *arg);

/* The write end (> 2) for the child to keep; the top of the child's stack. */
int exec_watch_write_end(const struct exec_watch *w);
void *exec_watch_stack_top(const struct exec_watch *w);

/* On the cloning thread, after the clone (or its failure): its write end is closed, and the watch
 * (and whatever `execd` owns) is the loop's from then on. */
void exec_watch_let_go(struct exec_watch *w);

/* On the loop, at a teardown: waits for the hang-up, `execd` not called. */
void exec_watch_wait(struct exec_watch *w);

/* On the loop: after `execd` (or exec_watch_wait), or for a clone that never ran. */
void exec_watch_close(struct addon_state *state, struct exec_watch *w);

/* The environment is going away: the stacks kept for the next children are unmapped. */
void exec_watch_free_stacks(struct addon_state *state);

#endif
