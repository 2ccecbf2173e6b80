/* Cortex-M4F port: BASEPRI critical sections with the running task's nesting count, SysTick and
 * PendSV at the lowest priority, the first task started by SVC, and the PendSV context switch
 * (r4-r11, EXC_RETURN and, for FPU frames, s16-s31 on the task's stack). */
#include <stdlib.h>
#include "board.h"
#include "rtos.h"

#define INITIAL_XPSR 0x01000000u      /* Thumb bit */
#define EXC_RETURN_THREAD_PSP 0xFFFFFFFDu
#define SYSTICK_RELOAD 168000u        /* 1 ms tick at QEMU's 168 MHz core clock */

/* Not zero until the scheduler starts: an exit before then leaves interrupts masked, as in
 * FreeRTOS, so no tick can switch to a half-made task list. */
volatile UBaseType_t uxCriticalNesting = 0xaaaaaaaau;
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
        vPortSetBASEPRI(0); /* a PendSV pended inside the section is taken here */
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
 * the tick does not raise BASEPRI: a debugger halting on each msr basepri would stop every tick. */
void SysTick_Handler(void)
{
    if (xTaskIncrementTick() != pdFALSE)
        portYIELD();
}

/* Loads pxCurrentTCB's context and returns into it on its PSP, with interrupts unmasked. */
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

/* Saves the running task's registers, picks the next task with the kernel's interrupts masked,
 * and returns into it. */
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
        "mov r0, %0\n"
        "msr basepri, r0\n"
        "dsb\n"
        "isb\n"
        "bl vTaskSwitchContext\n"
        "mov r0, #0\n"
        "msr basepri, r0\n"
        "pop {r3, r14}\n"
        "ldr r1, [r3]\n"
        "ldr r0, [r1]\n"
        "ldmia r0!, {r4-r11, r14}\n"
        "tst r14, #0x10\n"
        "it eq\n"
        "vldmiaeq r0!, {s16-s31}\n"
        "msr psp, r0\n"
        "isb\n"
        "bx r14\n" ::"i"(configMAX_SYSCALL_INTERRUPT_PRIORITY));
}

/* Called with BASEPRI raised, so no tick switches before the first task runs; SVC lowers it. */
void xPortStartScheduler(void)
{
    SCB_SHPR[14 - 4] = configKERNEL_INTERRUPT_PRIORITY; /* PendSV */
    ulMaxSyscallInterruptPriority = configMAX_SYSCALL_INTERRUPT_PRIORITY;
    uxCriticalNesting = 0;
    systick_start(SYSTICK_RELOAD, configLIBRARY_LOWEST_INTERRUPT_PRIORITY);
    __asm volatile("svc 0" ::: "memory");
}

/* heap_3: the C library's heap, made thread-safe by suspending the scheduler around it. */
void *pvPortMalloc(size_t xWantedSize)
{
    vTaskSuspendAll();
    void *block = malloc(xWantedSize);
    (void)xTaskResumeAll();
    return block;
}

void vPortFree(void *pv)
{
    vTaskSuspendAll();
    free(pv);
    (void)xTaskResumeAll();
}
