/* Task list, tick and round-robin scheduling: every tick hands the CPU to the next ready task,
 * as FreeRTOS does for equal-priority tasks with configUSE_TIME_SLICING. */
#include <string.h>
#include "board.h"
#include "rtos.h"

#define MAX_TASKS 3
#define IDLE_STACK_WORDS 128

TCB_t *volatile pxCurrentTCB;
volatile TickType_t xTickCount;
static volatile BaseType_t xSchedulerRunning;

static TCB_t *tasks[MAX_TASKS];
static unsigned task_count;
static TCB_t idle_tcb;
static uint32_t idle_stack[IDLE_STACK_WORDS] __attribute__((aligned(8)));

void xTaskCreateStatic(TaskFunction_t pxTaskCode, const char *pcName, uint32_t *puxStackBuffer,
                       uint32_t ulStackDepth, void *pvParameters, TCB_t *pxTaskBuffer)
{
    strncpy(pxTaskBuffer->pcTaskName, pcName, sizeof pxTaskBuffer->pcTaskName - 1);
    pxTaskBuffer->pxTopOfStack = pxPortInitialiseStack(puxStackBuffer + ulStackDepth, pxTaskCode, pvParameters);
    pxTaskBuffer->eState = eReady;
    tasks[task_count++] = pxTaskBuffer;
    if (pxCurrentTCB == NULL)
        pxCurrentTCB = pxTaskBuffer;
}

static void prvIdleTask(void *pvParameters)
{
    (void)pvParameters;
    for (;;)
        __asm volatile("wfi");
}

TickType_t xTaskGetTickCount(void)
{
    return xTickCount;
}

TickType_t xTaskGetTickCountFromISR(void)
{
    return xTickCount;
}

BaseType_t xTaskGetSchedulerState(void)
{
    return xSchedulerRunning ? taskSCHEDULER_RUNNING : taskSCHEDULER_NOT_STARTED;
}

static unsigned ready_tasks(void)
{
    unsigned ready = 0;
    for (unsigned i = 0; i < task_count; i++)
        ready += tasks[i]->eState == eReady;
    return ready;
}

/* From SysTick: wakes delayed tasks; asks for a switch when another task can run. */
BaseType_t xTaskIncrementTick(void)
{
    TickType_t now = ++xTickCount;
    for (unsigned i = 0; i < task_count; i++) {
        if (tasks[i]->eState == eBlocked && (int32_t)(now - tasks[i]->xWakeTick) >= 0)
            tasks[i]->eState = eReady;
    }
    unsigned ready = ready_tasks();
    if (pxCurrentTCB == &idle_tcb)
        return ready > 0;
    return ready > 1 || pxCurrentTCB->eState != eReady;
}

/* From PendSV: the next ready task after the current one, else idle. */
__attribute__((used, noinline)) void vTaskSwitchContext(void)
{
    unsigned current = task_count - 1;
    for (unsigned i = 0; i < task_count; i++) {
        if (tasks[i] == pxCurrentTCB)
            current = i;
    }
    for (unsigned step = 1; step <= task_count; step++) {
        TCB_t *candidate = tasks[(current + step) % task_count];
        if (candidate->eState == eReady) {
            pxCurrentTCB = candidate;
            return;
        }
    }
    pxCurrentTCB = &idle_tcb;
}

__attribute__((noinline)) void vTaskDelay(TickType_t xTicksToDelay)
{
    vPortEnterCritical();
    pxCurrentTCB->xWakeTick = xTickCount + xTicksToDelay;
    pxCurrentTCB->eState = eBlocked;
    portYIELD();
    vPortExitCritical();
}

void vTaskSuspend(TCB_t *xTaskToSuspend)
{
    vPortEnterCritical();
    TCB_t *task = xTaskToSuspend ? xTaskToSuspend : pxCurrentTCB;
    task->eState = eSuspended;
    if (task == pxCurrentTCB)
        portYIELD();
    vPortExitCritical();
}

void vTaskStartScheduler(void)
{
    strcpy(idle_tcb.pcTaskName, "IDLE");
    idle_tcb.pxTopOfStack = pxPortInitialiseStack(idle_stack + IDLE_STACK_WORDS, prvIdleTask, NULL);
    idle_tcb.eState = eReady;
    ulPortRaiseBASEPRI();
    xSchedulerRunning = pdTRUE;
    xPortStartScheduler();
}
