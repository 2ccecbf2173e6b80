/* A small preemptive round-robin kernel with FreeRTOS's names and port conventions (seed 003):
 * SysTick time slices, PendSV context switch on PSP task stacks, BASEPRI critical sections. */
#ifndef RTOS_H
#define RTOS_H
#include <stdint.h>

typedef long BaseType_t;
typedef unsigned long UBaseType_t;
typedef uint32_t TickType_t;
#define pdFALSE 0
#define pdTRUE 1
#define pdPASS 1
#define pdFAIL 0
#define errQUEUE_FULL 0
#define queueSEND_TO_BACK 0

#define configPRIO_BITS 4
#define configLIBRARY_LOWEST_INTERRUPT_PRIORITY 15
#define configLIBRARY_MAX_SYSCALL_INTERRUPT_PRIORITY 5
#define configKERNEL_INTERRUPT_PRIORITY (configLIBRARY_LOWEST_INTERRUPT_PRIORITY << (8 - configPRIO_BITS))
#define configMAX_SYSCALL_INTERRUPT_PRIORITY (configLIBRARY_MAX_SYSCALL_INTERRUPT_PRIORITY << (8 - configPRIO_BITS))

typedef enum { eReady, eBlocked, eSuspended } eTaskState;

typedef struct tskTaskControlBlock {
    volatile uint32_t *pxTopOfStack; /* first member: PendSV_Handler stores the task's SP here */
    volatile eTaskState eState;
    TickType_t xWakeTick;
    char pcTaskName[16];
} TCB_t;

typedef void (*TaskFunction_t)(void *pvParameters);

extern TCB_t *volatile pxCurrentTCB;
extern volatile TickType_t xTickCount;
extern volatile UBaseType_t uxCriticalNesting;
extern uint32_t ulMaxSyscallInterruptPriority;

void xTaskCreateStatic(TaskFunction_t pxTaskCode, const char *pcName, uint32_t *puxStackBuffer,
                       uint32_t ulStackDepth, void *pvParameters, TCB_t *pxTaskBuffer);
void vTaskStartScheduler(void);
void vTaskDelay(TickType_t xTicksToDelay);
void vTaskSuspend(TCB_t *xTaskToSuspend);
TickType_t xTaskGetTickCount(void);
TickType_t xTaskGetTickCountFromISR(void);
#define taskSCHEDULER_NOT_STARTED 1
#define taskSCHEDULER_RUNNING 2
BaseType_t xTaskGetSchedulerState(void);

/* Port layer (port.c). */
void vPortEnterCritical(void);
void vPortExitCritical(void);
uint32_t ulPortRaiseBASEPRI(void);
void vPortSetBASEPRI(uint32_t ulNewMaskValue);
uint32_t *pxPortInitialiseStack(uint32_t *pxTopOfStack, TaskFunction_t pxCode, void *pvParameters);
void xPortStartScheduler(void);
#define portYIELD() (SCB_ICSR = ICSR_PENDSVSET)
#define portYIELD_FROM_ISR(x) do { if (x) portYIELD(); } while (0)
#define taskENTER_CRITICAL() vPortEnterCritical()
#define taskEXIT_CRITICAL() vPortExitCritical()
#define taskENTER_CRITICAL_FROM_ISR() ulPortRaiseBASEPRI()
#define taskEXIT_CRITICAL_FROM_ISR(x) vPortSetBASEPRI(x)

/* Kernel hooks the port calls (tasks.c). */
BaseType_t xTaskIncrementTick(void);
void vTaskSwitchContext(void);

/* Queues (queue.c): a ring of fixed-size items. */
typedef struct QueueDefinition {
    uint8_t *pcStorage;
    UBaseType_t uxLength;
    UBaseType_t uxItemSize;
    volatile UBaseType_t uxMessagesWaiting;
    UBaseType_t uxReadIndex;
    UBaseType_t uxWriteIndex;
} Queue_t;
typedef Queue_t *QueueHandle_t;

QueueHandle_t xQueueCreateStatic(UBaseType_t uxQueueLength, UBaseType_t uxItemSize, uint8_t *pucQueueStorage,
                                 Queue_t *pxStaticQueue);
BaseType_t xQueueGenericSendFromISR(QueueHandle_t xQueue, const void *pvItemToQueue,
                                    BaseType_t *pxHigherPriorityTaskWoken, BaseType_t xCopyPosition);
BaseType_t xQueueReceive(QueueHandle_t xQueue, void *pvBuffer, TickType_t xTicksToWait);
#endif
