/* Test firmware for the pyOCD bridge: TIM2's update interrupt counts in `tim2_ticks` and keeps
 * the exception number it ran at in `tim2_ipsr`; main spins, storing its loop count. */
#include "board.h"

#define TIM2_PRIORITY 6u

volatile uint32_t tim2_ticks;
volatile uint32_t tim2_ipsr;
volatile uint32_t main_loops;

void __attribute__((noinline)) tim2_record(void)
{
    tim2_ipsr = __get_IPSR();
    tim2_ticks = tim2_ticks + 1u;
}

void TIM2_IRQHandler(void)
{
    TIM_SR(TIM2_BASE) = 0;
    tim2_record();
}

int main(void)
{
    nvic_set_priority(TIM2_IRQn, TIM2_PRIORITY);
    nvic_enable_irq(TIM2_IRQn);
    tim_start_periodic(TIM2_BASE, 0, 20000);
    for (;;)
        main_loops = main_loops + 1u;
}
