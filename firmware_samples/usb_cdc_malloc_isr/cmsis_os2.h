/* The CMSIS-RTOS2 mutex API, enough of it for a heap lock: one thread ("main"), no scheduler. */
#ifndef CMSIS_OS2_H
#define CMSIS_OS2_H
#include <stdint.h>

typedef void *osThreadId_t;
typedef void *osMutexId_t;

typedef enum {
    osOK = 0,
    osError = -1,
    osErrorTimeout = -2,
    osErrorResource = -3,
    osErrorParameter = -4,
    osErrorNoMemory = -5,
    osErrorISR = -6,
} osStatus_t;

#define osWaitForever 0xFFFFFFFFu
#define osMutexRecursive 0x00000001u
#define osMutexPrioInherit 0x00000002u

typedef struct {
    const char *name;
    uint32_t attr_bits;
    void *cb_mem;
    uint32_t cb_size;
} osMutexAttr_t;

osThreadId_t osThreadGetId(void);
osMutexId_t osMutexNew(const osMutexAttr_t *attr);
osStatus_t osMutexAcquire(osMutexId_t mutex_id, uint32_t timeout);
osStatus_t osMutexRelease(osMutexId_t mutex_id);

/* Like an RTOS built with its ISR checks on: the first call made from an interrupt. */
typedef struct {
    uint32_t count;
    uint32_t first_ipsr;
    const char *first_function;
} os_isr_misuse_t;
extern os_isr_misuse_t os_isr_misuse;

#endif
