/* A minimal recursive mutex behind the CMSIS-RTOS2 API. Called from an ISR it returns osErrorISR
 * as the specification says, without taking the mutex, and records the misuse. */
#include <stddef.h>
#include "board.h"
#include "cmsis_os2.h"

#define MAX_MUTEXES 2u

typedef struct {
    const char *name;
    uint32_t attr_bits;
    osThreadId_t owner;
    uint32_t lock_count;
} os_mutex_t;

typedef struct {
    const char *name;
} os_thread_t;

static os_thread_t main_thread = {.name = "main"};
static os_mutex_t mutex_pool[MAX_MUTEXES];
static uint32_t mutexes_used;
os_isr_misuse_t os_isr_misuse;

static int called_from_isr(const char *function)
{
    uint32_t ipsr = __get_IPSR();
    if (ipsr == 0)
        return 0;
    if (os_isr_misuse.count++ == 0) {
        os_isr_misuse.first_ipsr = ipsr;
        os_isr_misuse.first_function = function;
    }
    return 1;
}

osThreadId_t osThreadGetId(void) { return &main_thread; }

osMutexId_t osMutexNew(const osMutexAttr_t *attr)
{
    if (called_from_isr(__func__) || mutexes_used == MAX_MUTEXES)
        return NULL;
    os_mutex_t *mutex = &mutex_pool[mutexes_used++];
    mutex->name = attr ? attr->name : NULL;
    mutex->attr_bits = attr ? attr->attr_bits : 0u;
    return mutex;
}

__attribute__((noinline)) osStatus_t osMutexAcquire(osMutexId_t mutex_id, uint32_t timeout)
{
    os_mutex_t *mutex = mutex_id;
    (void)timeout; /* the only thread never waits on itself */
    if (called_from_isr(__func__))
        return osErrorISR;
    if (mutex == NULL)
        return osErrorParameter;
    if (mutex->lock_count == 0) {
        mutex->owner = osThreadGetId();
        mutex->lock_count = 1;
        return osOK;
    }
    if (mutex->owner == osThreadGetId() && (mutex->attr_bits & osMutexRecursive)) {
        mutex->lock_count++;
        return osOK;
    }
    return osErrorResource;
}

__attribute__((noinline)) osStatus_t osMutexRelease(osMutexId_t mutex_id)
{
    os_mutex_t *mutex = mutex_id;
    if (called_from_isr(__func__))
        return osErrorISR;
    if (mutex == NULL)
        return osErrorParameter;
    if (mutex->lock_count == 0 || mutex->owner != osThreadGetId())
        return osErrorResource;
    if (--mutex->lock_count == 0)
        mutex->owner = NULL;
    return osOK;
}
