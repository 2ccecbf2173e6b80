/* Test firmware for the unwinder: thread mode runs on the process stack with the FPU in use, so
 * TIM2's exception entry stacks the 26-word floating-point frame on PSP (EXC_RETURN 0xFFFFFFED). */
#include "board.h"

#define TIM2_PRIORITY 6u
#define PROCESS_STACK_WORDS 256u

volatile uint32_t tim2_ticks;
volatile float main_phase = 1.0f;
static uint32_t process_stack[PROCESS_STACK_WORDS] __attribute__((aligned(8)));

void __attribute__((noinline)) tim2_count(void)
{
    tim2_ticks = tim2_ticks + 1u;
}

void TIM2_IRQHandler(void)
{
    TIM_SR(TIM2_BASE) = 0;
    tim2_count();
}

static void __attribute__((noinline, noreturn)) spin_with_fpu(void)
{
    nvic_set_priority(TIM2_IRQn, TIM2_PRIORITY);
    nvic_enable_irq(TIM2_IRQn);
    tim_start_periodic(TIM2_BASE, 0, 20000);
    for (;;)
        main_phase = main_phase * 0.5f + 1.0f;
}

int main(void)
{
    __asm volatile("msr psp, %0" ::"r"(process_stack + PROCESS_STACK_WORDS));
    __asm volatile("msr control, %0\n isb" ::"r"(2u) : "memory"); /* SPSEL: thread mode on PSP */
    spin_with_fpu();
}
