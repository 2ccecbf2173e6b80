#ifndef HEAP_LOCK_H
#define HEAP_LOCK_H
/* Create the heap mutex; call before the first malloc. */
void heap_lock_init(void);
#endif
