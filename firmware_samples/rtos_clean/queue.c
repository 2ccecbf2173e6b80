/* Queues and mutexes. A task that must wait places itself on the queue's waiting list and pends
 * PendSV inside the critical section: it switches out when the section ends and tries again
 * once a sender (or its timeout) readies it. */
#include <string.h>
#include "board.h"
#include "rtos.h"

static int is_mutex(const Queue_t *queue)
{
    return queue->pcHead == NULL;
}

QueueHandle_t xQueueGenericCreateStatic(UBaseType_t uxQueueLength, UBaseType_t uxItemSize, uint8_t *pucQueueStorage,
                                        Queue_t *pxStaticQueue)
{
    *pxStaticQueue = (Queue_t){.pcHead = (int8_t *)pucQueueStorage, .uxLength = uxQueueLength, .uxItemSize = uxItemSize};
    return pxStaticQueue;
}

/* A mutex starts available: one (empty) item waiting. */
QueueHandle_t xQueueCreateMutexStatic(Queue_t *pxStaticQueue)
{
    *pxStaticQueue = (Queue_t){.pcHead = NULL, .uxLength = 1, .uxItemSize = 0, .uxMessagesWaiting = 1};
    return pxStaticQueue;
}

static void copy_in(Queue_t *queue, const void *item)
{
    if (queue->uxItemSize > 0) {
        memcpy(queue->pcHead + queue->uxWriteIndex * queue->uxItemSize, item, queue->uxItemSize);
        queue->uxWriteIndex = (queue->uxWriteIndex + 1) % queue->uxLength;
    }
    queue->uxMessagesWaiting++;
}

static void copy_out(Queue_t *queue, void *buffer)
{
    if (queue->uxItemSize > 0) {
        memcpy(buffer, queue->pcHead + queue->uxReadIndex * queue->uxItemSize, queue->uxItemSize);
        queue->uxReadIndex = (queue->uxReadIndex + 1) % queue->uxLength;
    }
    queue->uxMessagesWaiting--;
}

/* xSemaphoreGive on a mutex: the holder gives it back. Waits for room when the queue is full. */
__attribute__((noinline)) BaseType_t xQueueGenericSend(QueueHandle_t xQueue, const void *pvItemToQueue,
                                                       TickType_t xTicksToWait, BaseType_t xCopyPosition)
{
    (void)xCopyPosition; /* only queueSEND_TO_BACK */
    for (;;) {
        taskENTER_CRITICAL();
        if (xQueue->uxMessagesWaiting < xQueue->uxLength) {
            copy_in(xQueue, pvItemToQueue);
            if (is_mutex(xQueue))
                xQueue->pxMutexHolder = NULL;
            if (xTaskRemoveFromEventList(xQueue))
                portYIELD_WITHIN_API();
            taskEXIT_CRITICAL();
            return pdPASS;
        }
        if (xTicksToWait == 0) {
            taskEXIT_CRITICAL();
            return pdFAIL;
        }
        vTaskPlaceOnEventList(xQueue, xTicksToWait);
        portYIELD_WITHIN_API();
        taskEXIT_CRITICAL();
        if (xTaskTimedOut())
            return pdFAIL;
    }
}

static BaseType_t receive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait)
{
    for (;;) {
        taskENTER_CRITICAL();
        if (xQueue->uxMessagesWaiting > 0) {
            copy_out(xQueue, pvBuffer);
            if (is_mutex(xQueue))
                xQueue->pxMutexHolder = pxCurrentTCB;
            if (xTaskRemoveFromEventList(xQueue))
                portYIELD_WITHIN_API();
            taskEXIT_CRITICAL();
            return pdPASS;
        }
        if (xTicksToWait == 0) {
            taskEXIT_CRITICAL();
            return pdFAIL;
        }
        vTaskPlaceOnEventList(xQueue, xTicksToWait);
        portYIELD_WITHIN_API();
        taskEXIT_CRITICAL();
        if (xTaskTimedOut())
            return pdFAIL;
    }
}

__attribute__((noinline)) BaseType_t xQueueReceive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait)
{
    return receive(xQueue, pvBuffer, xTicksToWait);
}

/* xSemaphoreTake: a receive without data. */
__attribute__((noinline)) BaseType_t xQueueSemaphoreTake(QueueHandle_t xQueue, TickType_t xTicksToWait)
{
    return receive(xQueue, NULL, xTicksToWait);
}

__attribute__((noinline)) BaseType_t xQueueGenericSendFromISR(QueueHandle_t xQueue, const void *pvItemToQueue,
                                                              BaseType_t *pxHigherPriorityTaskWoken,
                                                              BaseType_t xCopyPosition)
{
    (void)xCopyPosition;
    BaseType_t result = pdFAIL;
    uint32_t saved = taskENTER_CRITICAL_FROM_ISR();
    if (xQueue->uxMessagesWaiting < xQueue->uxLength) {
        copy_in(xQueue, pvItemToQueue);
        if (xTaskRemoveFromEventList(xQueue))
            *pxHigherPriorityTaskWoken = pdTRUE;
        result = pdPASS;
    }
    taskEXIT_CRITICAL_FROM_ISR(saved);
    return result;
}
