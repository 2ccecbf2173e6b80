/* Cortex-M4F port: BASEPRI critical sections with a nesting count, the first task started by SVC,
 * and the PendSV context switch (r4-r11, EXC_RETURN and, for FPU frames, s16-s31 on the task stack). */
#include "board.h"
#include "rtos.h"

#define INITIAL_XPSR 0x01000000u      /* Thumb bit */
#define EXC_RETURN_THREAD_PSP 0xFFFFFFFDu
#define SYSTICK_RELOAD 168000u        /* 1 ms tick at QEMU's 168 MHz core clock */

volatile UBaseType_t uxCriticalNesting;
uint32_t ulMaxSyscallInterruptPriority;

__attribute__((noinline)) uint32_t ulPortRaiseBASEPRI(void)
{
    uint32_t previous = __get_BASEPRI();
    __set_BASEPRI(configMAX_SYSCALL_INTERRUPT_PRIORITY);
    __DSB();
    __ISB();
    return previous;
}

__attribute__((noinline)) void vPortSetBASEPRI(uint32_t ulNewMaskValue)
{
    __set_BASEPRI(ulNewMaskValue);
}

__attribute__((noinline)) void vPortEnterCritical(void)
{
    ulPortRaiseBASEPRI();
    uxCriticalNesting++;
}

__attribute__((noinline)) void vPortExitCritical(void)
{
    uxCriticalNesting--;
    if (uxCriticalNesting == 0)
        vPortSetBASEPRI(0);
}

/* The frame PendSV_Handler pops on the first switch to a task: r4-r11 and EXC_RETURN below
 * the exception frame r0-r3, r12, lr, pc, xPSR. Tasks never return: lr 0 ends a backtrace there. */
uint32_t *pxPortInitialiseStack(uint32_t *pxTopOfStack, TaskFunction_t pxCode, void *pvParameters)
{
    *--pxTopOfStack = INITIAL_XPSR;
    *--pxTopOfStack = (uint32_t)pxCode;
    *--pxTopOfStack = 0;                                /* lr */
    pxTopOfStack -= 4;                                  /* r12, r3, r2, r1 */
    *--pxTopOfStack = (uint32_t)pvParameters;           /* r0 */
    *--pxTopOfStack = EXC_RETURN_THREAD_PSP;
    pxTopOfStack -= 8;                                  /* r11..r4 */
    return pxTopOfStack;
}

/* SysTick and PendSV share the lowest priority and every task critical section masks both, so
 * neither raises BASEPRI: a debugger halting on each msr basepri would otherwise stop every tick. */
void SysTick_Handler(void)
{
    if (xTaskIncrementTick() != pdFALSE)
        portYIELD();
}

/* Loads pxCurrentTCB's context and returns into it on its PSP. */
__attribute__((naked)) void SVC_Handler(void)
{
    __asm volatile(
        "movw r3, #:lower16:pxCurrentTCB\n"
        "movt r3, #:upper16:pxCurrentTCB\n"
        "ldr r1, [r3]\n"
        "ldr r0, [r1]\n"
        "ldmia r0!, {r4-r11, r14}\n"
        "msr psp, r0\n"
        "isb\n"
        "mov r0, #0\n"
        "msr basepri, r0\n"
        "bx r14\n");
}

__attribute__((naked)) void PendSV_Handler(void)
{
    __asm volatile(
        "mrs r0, psp\n"
        "isb\n"
        "movw r3, #:lower16:pxCurrentTCB\n"
        "movt r3, #:upper16:pxCurrentTCB\n"
        "ldr r2, [r3]\n"
        "tst r14, #0x10\n"              /* EXC_RETURN bit 4 clear: the frame holds FPU state */
        "it eq\n"
        "vstmdbeq r0!, {s16-s31}\n"
        "stmdb r0!, {r4-r11, r14}\n"
        "str r0, [r2]\n"
        "push {r3, r14}\n"
        "bl vTaskSwitchContext\n"
        "pop {r3, r14}\n"
        "ldr r1, [r3]\n"
        "ldr r0, [r1]\n"
        "ldmia r0!, {r4-r11, r14}\n"
        "tst r14, #0x10\n"
        "it eq\n"
        "vldmiaeq r0!, {s16-s31}\n"
        "msr psp, r0\n"
        "isb\n"
        "bx r14\n");
}

/* Called with BASEPRI raised, so no tick switches before the first task runs; SVC lowers it. */
void xPortStartScheduler(void)
{
    SCB_SHPR[14 - 4] = configKERNEL_INTERRUPT_PRIORITY; /* PendSV */
    ulMaxSyscallInterruptPriority = configMAX_SYSCALL_INTERRUPT_PRIORITY;
    systick_start(SYSTICK_RELOAD, configLIBRARY_LOWEST_INTERRUPT_PRIORITY);
    __asm volatile("svc 0" ::: "memory");
}
