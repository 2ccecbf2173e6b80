/* A small preemptive kernel that behaves like FreeRTOS's Cortex-M4F port, under FreeRTOS's names:
 *  - fixed-priority scheduling, equal priorities time-sliced by a 1 kHz SysTick;
 *  - BASEPRI critical sections with one nesting counter for the running task, saved in its TCB and
 *    restored on every context switch; API calls take them internally;
 *  - blocking calls pend PendSV inside their critical section (portYIELD_WITHIN_API): the switch
 *    happens when BASEPRI drops, so other tasks run between a task's enter and its return;
 *  - queues, and mutexes that are queues whose pcHead is NULL (queueQUEUE_IS_MUTEX);
 *  - heap calls guarded by scheduler suspension (heap_3);
 *  - SysTick and PendSV at the lowest priority, the first task started through SVC. */
#ifndef RTOS_H
#define RTOS_H
#include <stddef.h>
#include <stdint.h>

typedef long BaseType_t;
typedef unsigned long UBaseType_t;
typedef uint32_t TickType_t;
#define pdFALSE 0
#define pdTRUE 1
#define pdPASS 1
#define pdFAIL 0
#define portMAX_DELAY 0xFFFFFFFFu
#define queueSEND_TO_BACK 0

#define configPRIO_BITS 4
#define configLIBRARY_LOWEST_INTERRUPT_PRIORITY 15
#define configLIBRARY_MAX_SYSCALL_INTERRUPT_PRIORITY 5
#define configKERNEL_INTERRUPT_PRIORITY (configLIBRARY_LOWEST_INTERRUPT_PRIORITY << (8 - configPRIO_BITS))
#define configMAX_SYSCALL_INTERRUPT_PRIORITY (configLIBRARY_MAX_SYSCALL_INTERRUPT_PRIORITY << (8 - configPRIO_BITS))
#define configMAX_TASKS 5

typedef enum { eReady, eBlocked, eSuspended } eTaskState;

typedef struct tskTaskControlBlock {
    volatile uint32_t *pxTopOfStack; /* first member: PendSV_Handler stores the task's SP here */
    UBaseType_t uxPriority;
    volatile eTaskState eState;
    TickType_t xWakeTick;            /* when a blocked task times out */
    void *volatile pvBlockedOn;      /* the queue a blocked task waits for, or NULL */
    UBaseType_t uxCriticalNesting;   /* the task's nesting count while it is switched out */
    char pcTaskName[16];
} TCB_t;
typedef TCB_t *TaskHandle_t;
typedef void (*TaskFunction_t)(void *pvParameters);

extern TCB_t *volatile pxCurrentTCB;
extern volatile UBaseType_t uxCriticalNesting;
extern uint32_t ulMaxSyscallInterruptPriority;

TaskHandle_t xTaskCreateStatic(TaskFunction_t pxTaskCode, const char *pcName, uint32_t ulStackDepth,
                               void *pvParameters, UBaseType_t uxPriority, uint32_t *puxStackBuffer,
                               TCB_t *pxTaskBuffer);
void vTaskStartScheduler(void);
void vTaskDelay(TickType_t xTicksToDelay);
void vTaskSuspend(TaskHandle_t xTaskToSuspend);
void vTaskSuspendAll(void);
BaseType_t xTaskResumeAll(void);
TickType_t xTaskGetTickCount(void);

/* Kernel internals the queues and the port use (tasks.c). */
BaseType_t xTaskIncrementTick(void);
void vTaskSwitchContext(void);
void vTaskPlaceOnEventList(void *pvQueue, TickType_t xTicksToWait);
BaseType_t xTaskRemoveFromEventList(void *pvQueue);
BaseType_t xTaskTimedOut(void);

/* Port layer (port.c). */
void vPortEnterCritical(void);
void vPortExitCritical(void);
uint32_t ulPortRaiseBASEPRI(void);
void vPortSetBASEPRI(uint32_t ulNewMaskValue);
uint32_t *pxPortInitialiseStack(uint32_t *pxTopOfStack, TaskFunction_t pxCode, void *pvParameters);
void xPortStartScheduler(void);
void *pvPortMalloc(size_t xWantedSize);
void vPortFree(void *pv);
#define portYIELD() (SCB_ICSR = ICSR_PENDSVSET)
#define portYIELD_WITHIN_API() portYIELD()
#define portYIELD_FROM_ISR(x) do { if (x) portYIELD(); } while (0)
#define taskENTER_CRITICAL() vPortEnterCritical()
#define taskEXIT_CRITICAL() vPortExitCritical()
#define taskENTER_CRITICAL_FROM_ISR() ulPortRaiseBASEPRI()
#define taskEXIT_CRITICAL_FROM_ISR(x) vPortSetBASEPRI(x)

/* Queues (queue.c): a ring of fixed-size items; a mutex is a queue of one empty item whose
 * pcHead is NULL. */
typedef struct QueueDefinition {
    int8_t *pcHead;                  /* the storage; NULL marks a mutex */
    TCB_t *pxMutexHolder;
    UBaseType_t uxLength;
    UBaseType_t uxItemSize;
    volatile UBaseType_t uxMessagesWaiting;
    UBaseType_t uxReadIndex;
    UBaseType_t uxWriteIndex;
} Queue_t;
typedef Queue_t *QueueHandle_t;
typedef QueueHandle_t SemaphoreHandle_t;

QueueHandle_t xQueueGenericCreateStatic(UBaseType_t uxQueueLength, UBaseType_t uxItemSize, uint8_t *pucQueueStorage,
                                        Queue_t *pxStaticQueue);
QueueHandle_t xQueueCreateMutexStatic(Queue_t *pxStaticQueue);
BaseType_t xQueueGenericSend(QueueHandle_t xQueue, const void *pvItemToQueue, TickType_t xTicksToWait,
                             BaseType_t xCopyPosition);
BaseType_t xQueueReceive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait);
BaseType_t xQueueSemaphoreTake(QueueHandle_t xQueue, TickType_t xTicksToWait);
BaseType_t xQueueGenericSendFromISR(QueueHandle_t xQueue, const void *pvItemToQueue,
                                    BaseType_t *pxHigherPriorityTaskWoken, BaseType_t xCopyPosition);
#define xSemaphoreTake(m, t) xQueueSemaphoreTake((m), (t))
#define xSemaphoreGive(m) xQueueGenericSend((m), NULL, 0, queueSEND_TO_BACK)
#define xQueueSend(q, item, t) xQueueGenericSend((q), (item), (t), queueSEND_TO_BACK)
#define xQueueSendFromISR(q, item, woken) xQueueGenericSendFromISR((q), (item), (woken), queueSEND_TO_BACK)
#endif
