/* Queues: FromISR senders mask with BASEPRI, which only holds off ISRs at or below the
 * syscall ceiling; a more urgent ISR calling them breaks the task's critical section. */
#include <string.h>
#include "board.h"
#include "rtos.h"

QueueHandle_t xQueueCreateStatic(UBaseType_t uxQueueLength, UBaseType_t uxItemSize, uint8_t *pucQueueStorage,
                                 Queue_t *pxStaticQueue)
{
    *pxStaticQueue = (Queue_t){
        .pcStorage = pucQueueStorage, .uxLength = uxQueueLength, .uxItemSize = uxItemSize,
    };
    return pxStaticQueue;
}

__attribute__((noinline)) BaseType_t xQueueGenericSendFromISR(QueueHandle_t xQueue, const void *pvItemToQueue,
                                                              BaseType_t *pxHigherPriorityTaskWoken,
                                                              BaseType_t xCopyPosition)
{
    (void)xCopyPosition; /* only queueSEND_TO_BACK */
    BaseType_t result = errQUEUE_FULL;
    uint32_t saved = taskENTER_CRITICAL_FROM_ISR();
    if (xQueue->uxMessagesWaiting < xQueue->uxLength) {
        memcpy(xQueue->pcStorage + xQueue->uxWriteIndex * xQueue->uxItemSize, pvItemToQueue, xQueue->uxItemSize);
        xQueue->uxWriteIndex = (xQueue->uxWriteIndex + 1) % xQueue->uxLength;
        xQueue->uxMessagesWaiting++;
        result = pdPASS;
    }
    taskEXIT_CRITICAL_FROM_ISR(saved);
    *pxHigherPriorityTaskWoken = pdFALSE; /* receivers poll: no task blocks on a queue */
    return result;
}

/* Polls once a tick for up to xTicksToWait ticks. */
__attribute__((noinline)) BaseType_t xQueueReceive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait)
{
    for (;;) {
        vPortEnterCritical();
        if (xQueue->uxMessagesWaiting > 0) {
            memcpy(pvBuffer, xQueue->pcStorage + xQueue->uxReadIndex * xQueue->uxItemSize, xQueue->uxItemSize);
            xQueue->uxReadIndex = (xQueue->uxReadIndex + 1) % xQueue->uxLength;
            xQueue->uxMessagesWaiting--;
            vPortExitCritical();
            return pdPASS;
        }
        vPortExitCritical();
        if (xTicksToWait-- == 0)
            return pdFAIL;
        vTaskDelay(1);
    }
}
