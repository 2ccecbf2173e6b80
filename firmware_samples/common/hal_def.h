/* The HAL's status codes and per-handle lock, with the semantics of ST's __HAL_LOCK. */
#ifndef HAL_DEF_H
#define HAL_DEF_H
#include <stdint.h>

typedef enum { HAL_OK = 0, HAL_ERROR = 1, HAL_BUSY = 2, HAL_TIMEOUT = 3 } HAL_StatusTypeDef;
typedef enum { HAL_UNLOCKED = 0, HAL_LOCKED = 1 } HAL_LockTypeDef;

#define HAL_MAX_DELAY 0xFFFFFFFFu

/* Not atomic and not a mutex: a test then a store, returning HAL_BUSY from the caller. */
#define __HAL_LOCK(h)                    \
    do {                                 \
        if ((h)->Lock == HAL_LOCKED)     \
            return HAL_BUSY;             \
        (h)->Lock = HAL_LOCKED;          \
    } while (0)
#define __HAL_UNLOCK(h) do { (h)->Lock = HAL_UNLOCKED; } while (0)

uint32_t HAL_GetTick(void);
#endif
