#include <string.h>
#include "board.h"
#include "rtos_queue.h"

uint32_t ulMaxSyscallInterruptPriority = configMAX_SYSCALL_INTERRUPT_PRIORITY;
volatile uint32_t port_priority_violations;
static volatile UBaseType_t uxCriticalNesting;

static inline uint32_t ulPortRaiseBASEPRI(void)
{
    uint32_t previous = __get_BASEPRI();
    __set_BASEPRI(ulMaxSyscallInterruptPriority);
    __DSB();
    __ISB();
    return previous;
}

__attribute__((noinline)) void vPortEnterCritical(void)
{
    ulPortRaiseBASEPRI();
    uxCriticalNesting++;
}

__attribute__((noinline)) void vPortExitCritical(void)
{
    if (--uxCriticalNesting == 0)
        __set_BASEPRI(0);
}

/* configASSERT of the real port: a FromISR call from an interrupt more urgent than the ceiling
 * would run while the kernel's critical sections think they exclude it. */
static void vPortValidateInterruptPriority(void)
{
    uint32_t exception = __get_IPSR();
    if (exception >= 16u && NVIC_IPR[exception - 16u] < ulMaxSyscallInterruptPriority)
        port_priority_violations++;
}

QueueHandle_t xQueueCreateStatic(UBaseType_t uxQueueLength, UBaseType_t uxItemSize,
                                 uint8_t *pucQueueStorage, StaticQueue_t *pxQueueBuffer)
{
    *pxQueueBuffer = (StaticQueue_t){
        .pcStorage = pucQueueStorage, .uxLength = uxQueueLength, .uxItemSize = uxItemSize,
    };
    return pxQueueBuffer;
}

__attribute__((noinline)) BaseType_t xQueueGenericSendFromISR(QueueHandle_t xQueue, const void *pvItemToQueue,
                                                              BaseType_t *pxHigherPriorityTaskWoken,
                                                              BaseType_t xCopyPosition)
{
    (void)xCopyPosition; /* only queueSEND_TO_BACK */
    vPortValidateInterruptPriority();
    BaseType_t result = errQUEUE_FULL;
    uint32_t saved = ulPortRaiseBASEPRI();
    if (xQueue->uxMessagesWaiting < xQueue->uxLength) {
        memcpy(xQueue->pcStorage + xQueue->uxWriteIndex * xQueue->uxItemSize, pvItemToQueue, xQueue->uxItemSize);
        xQueue->uxWriteIndex = (xQueue->uxWriteIndex + 1u) % xQueue->uxLength;
        xQueue->uxMessagesWaiting++;
        result = pdPASS;
    }
    __set_BASEPRI(saved);
    if (pxHigherPriorityTaskWoken != NULL)
        *pxHigherPriorityTaskWoken = pdFALSE; /* no task waits: there is no scheduler */
    return result;
}

/* Never blocks here: with no scheduler, xTicksToWait is ignored. */
__attribute__((noinline)) BaseType_t xQueueReceive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait)
{
    (void)xTicksToWait;
    BaseType_t result = errQUEUE_EMPTY;
    vPortEnterCritical();
    if (xQueue->uxMessagesWaiting > 0) {
        memcpy(pvBuffer, xQueue->pcStorage + xQueue->uxReadIndex * xQueue->uxItemSize, xQueue->uxItemSize);
        xQueue->uxReadIndex = (xQueue->uxReadIndex + 1u) % xQueue->uxLength;
        xQueue->uxMessagesWaiting--;
        result = pdPASS;
    }
    vPortExitCritical();
    return result;
}
