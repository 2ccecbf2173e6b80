/* newlib serialises malloc/free through __malloc_lock/__malloc_unlock; with an RTOS they usually
 * take a recursive mutex, as in the seed's RTOS. */
#include <reent.h>
#include "cmsis_os2.h"
#include "heap_lock.h"

static osMutexId_t heap_mutex;

void heap_lock_init(void)
{
    static const osMutexAttr_t heap_mutex_attr = {.name = "heap", .attr_bits = osMutexRecursive};
    heap_mutex = osMutexNew(&heap_mutex_attr);
}

void __malloc_lock(struct _reent *reent)
{
    (void)reent;
    osMutexAcquire(heap_mutex, osWaitForever);
}

void __malloc_unlock(struct _reent *reent)
{
    (void)reent;
    osMutexRelease(heap_mutex);
}
