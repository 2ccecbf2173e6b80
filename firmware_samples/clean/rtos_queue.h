/* A FreeRTOS-style port layer and queue: BASEPRI critical sections with a nesting counter and a
 * FromISR send for interrupts at or below configMAX_SYSCALL_INTERRUPT_PRIORITY. No scheduler. */
#ifndef RTOS_QUEUE_H
#define RTOS_QUEUE_H
#include <stdint.h>

typedef long BaseType_t;
typedef unsigned long UBaseType_t;
typedef uint32_t TickType_t;

#define pdFALSE 0
#define pdTRUE 1
#define pdPASS pdTRUE
#define errQUEUE_FULL 0
#define errQUEUE_EMPTY 0
#define queueSEND_TO_BACK 0

/* configMAX_SYSCALL_INTERRUPT_PRIORITY: NVIC priority 5 in the top four bits. */
#define configMAX_SYSCALL_INTERRUPT_PRIORITY (5u << 4)
extern uint32_t ulMaxSyscallInterruptPriority;
extern volatile uint32_t port_priority_violations;

typedef struct QueueDefinition {
    uint8_t *pcStorage;
    UBaseType_t uxLength;
    UBaseType_t uxItemSize;
    volatile UBaseType_t uxMessagesWaiting;
    UBaseType_t uxWriteIndex;
    UBaseType_t uxReadIndex;
} StaticQueue_t;
typedef StaticQueue_t *QueueHandle_t;

void vPortEnterCritical(void);
void vPortExitCritical(void);
QueueHandle_t xQueueCreateStatic(UBaseType_t uxQueueLength, UBaseType_t uxItemSize,
                                 uint8_t *pucQueueStorage, StaticQueue_t *pxQueueBuffer);
BaseType_t xQueueGenericSendFromISR(QueueHandle_t xQueue, const void *pvItemToQueue,
                                    BaseType_t *pxHigherPriorityTaskWoken, BaseType_t xCopyPosition);
BaseType_t xQueueReceive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait);

#endif
