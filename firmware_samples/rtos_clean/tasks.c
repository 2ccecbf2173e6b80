/* Task list, tick and scheduling: the highest-priority ready task runs (configUSE_TIME_SLICING 0:
 * equal priorities take turns when one blocks); blocked tasks wait for a tick count or a queue. */
#include <string.h>
#include "board.h"
#include "rtos.h"

#define IDLE_STACK_WORDS 128

TCB_t *volatile pxCurrentTCB;
static volatile TickType_t xTickCount;
static volatile UBaseType_t uxSchedulerSuspended;
static volatile BaseType_t xYieldPending;

static TCB_t *tasks[configMAX_TASKS];
static unsigned task_count;
static TCB_t idle_tcb;
static uint32_t idle_stack[IDLE_STACK_WORDS] __attribute__((aligned(8)));

/* The kernel makes the new task current, inside its critical section, when it outranks the
 * current one: before the scheduler starts, pxCurrentTCB names a task while main still runs. */
TaskHandle_t xTaskCreateStatic(TaskFunction_t pxTaskCode, const char *pcName, uint32_t ulStackDepth,
                               void *pvParameters, UBaseType_t uxPriority, uint32_t *puxStackBuffer,
                               TCB_t *pxTaskBuffer)
{
    strncpy(pxTaskBuffer->pcTaskName, pcName, sizeof pxTaskBuffer->pcTaskName - 1);
    pxTaskBuffer->pxTopOfStack = pxPortInitialiseStack(puxStackBuffer + ulStackDepth, pxTaskCode, pvParameters);
    pxTaskBuffer->uxPriority = uxPriority;
    pxTaskBuffer->uxCriticalNesting = 0;
    taskENTER_CRITICAL();
    pxTaskBuffer->eState = eReady;
    tasks[task_count++] = pxTaskBuffer;
    if (pxCurrentTCB == NULL || pxCurrentTCB->uxPriority < uxPriority)
        pxCurrentTCB = pxTaskBuffer;
    taskEXIT_CRITICAL();
    return pxTaskBuffer;
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

static BaseType_t outranks_current(const TCB_t *task)
{
    return pxCurrentTCB == &idle_tcb || task->uxPriority > pxCurrentTCB->uxPriority;
}

/* From SysTick: wakes timed-out tasks; asks for a switch when one outranks the current task. */
BaseType_t xTaskIncrementTick(void)
{
    TickType_t now = ++xTickCount;
    BaseType_t switch_needed = pdFALSE;
    for (unsigned i = 0; i < task_count; i++) {
        TCB_t *task = tasks[i];
        if (task->eState == eBlocked && task->xWakeTick != portMAX_DELAY && (int32_t)(now - task->xWakeTick) >= 0)
            task->eState = eReady;
        if (task != pxCurrentTCB && task->eState == eReady && outranks_current(task))
            switch_needed = pdTRUE;
    }
    return switch_needed;
}

/* From PendSV: the highest-priority ready task, the next one after the current among equals.
 * The running task's nesting count goes with it. */
__attribute__((used, noinline)) void vTaskSwitchContext(void)
{
    if (uxSchedulerSuspended) {
        xYieldPending = pdTRUE;
        return;
    }
    xYieldPending = pdFALSE;
    pxCurrentTCB->uxCriticalNesting = uxCriticalNesting;
    unsigned current = task_count - 1;
    for (unsigned i = 0; i < task_count; i++) {
        if (tasks[i] == pxCurrentTCB)
            current = i;
    }
    TCB_t *best = &idle_tcb;
    for (unsigned step = 1; step <= task_count; step++) {
        TCB_t *candidate = tasks[(current + step) % task_count];
        if (candidate->eState == eReady && (best == &idle_tcb || candidate->uxPriority > best->uxPriority))
            best = candidate;
    }
    pxCurrentTCB = best;
    uxCriticalNesting = best->uxCriticalNesting;
}

/* Called inside a critical section: the current task waits for `pvQueue` (and a timeout). */
void vTaskPlaceOnEventList(void *pvQueue, TickType_t xTicksToWait)
{
    pxCurrentTCB->pvBlockedOn = pvQueue;
    pxCurrentTCB->xWakeTick = xTicksToWait == portMAX_DELAY ? portMAX_DELAY : xTickCount + xTicksToWait;
    pxCurrentTCB->eState = eBlocked;
}

/* Called inside a critical section (or from an ISR): readies one task waiting for `pvQueue`;
 * true when it outranks the running task. */
BaseType_t xTaskRemoveFromEventList(void *pvQueue)
{
    TCB_t *woken = NULL;
    for (unsigned i = 0; i < task_count; i++) {
        TCB_t *task = tasks[i];
        if (task->eState == eBlocked && task->pvBlockedOn == pvQueue && (woken == NULL || task->uxPriority > woken->uxPriority))
            woken = task;
    }
    if (woken == NULL)
        return pdFALSE;
    woken->eState = eReady;
    woken->pvBlockedOn = NULL;
    return outranks_current(woken);
}

/* After a wait: true when the task was woken by its timeout, not by the queue. */
BaseType_t xTaskTimedOut(void)
{
    BaseType_t timed_out = pxCurrentTCB->pvBlockedOn != NULL;
    pxCurrentTCB->pvBlockedOn = NULL;
    return timed_out;
}

__attribute__((noinline)) void vTaskDelay(TickType_t xTicksToDelay)
{
    taskENTER_CRITICAL();
    vTaskPlaceOnEventList(NULL, xTicksToDelay);
    portYIELD_WITHIN_API();
    taskEXIT_CRITICAL();
}

void vTaskSuspend(TaskHandle_t xTaskToSuspend)
{
    taskENTER_CRITICAL();
    TCB_t *task = xTaskToSuspend ? xTaskToSuspend : pxCurrentTCB;
    task->eState = eSuspended;
    if (task == pxCurrentTCB)
        portYIELD_WITHIN_API();
    taskEXIT_CRITICAL();
}

/* No switch happens while suspended: a switch asked for meanwhile is made on resume. */
void vTaskSuspendAll(void)
{
    uxSchedulerSuspended++;
}

BaseType_t xTaskResumeAll(void)
{
    BaseType_t yielded = pdFALSE;
    taskENTER_CRITICAL();
    if (--uxSchedulerSuspended == 0 && xYieldPending) {
        yielded = pdTRUE;
        portYIELD_WITHIN_API();
    }
    taskEXIT_CRITICAL();
    return yielded;
}

void vTaskStartScheduler(void)
{
    xTaskCreateStatic(prvIdleTask, "IDLE", IDLE_STACK_WORDS, NULL, 0, idle_stack, &idle_tcb);
    task_count--; /* idle is the fallback, not on the list */
    ulPortRaiseBASEPRI(); /* portDISABLE_INTERRUPTS: SVC unmasks in the first task */
    xPortStartScheduler();
}
