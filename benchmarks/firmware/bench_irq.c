/* Bench firmware: a tight interrupt loop. main pends EXTI2 through STIR BENCH_ITERATIONS times and
 * waits for each activation; the handler counts them. The count is printed on USART1 so a bench
 * can check every activation against the trace. With BENCH_EXIT the firmware ends QEMU through
 * semihosting (SYS_EXIT), so a run can be timed without a debugger. */
#include "board.h"
#include "uart.h"

#ifndef BENCH_ITERATIONS
#define BENCH_ITERATIONS 1000u
#endif
#define BENCH_IRQ EXTI2_IRQn
#define BENCH_PRIORITY 4u
#define SYS_EXIT 0x18u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

volatile uint32_t bench_isr_count;

void EXTI2_IRQHandler(void)
{
    bench_isr_count++;
}

#ifdef BENCH_EXIT
static void semihosting_exit(void)
{
    register uint32_t reason __asm("r0") = SYS_EXIT;
    register uint32_t code __asm("r1") = ADP_STOPPED_APPLICATION_EXIT;
    __asm volatile("bkpt 0xab" ::"r"(reason), "r"(code) : "memory");
}
#endif

int main(void)
{
    uart_init();
    uart_print("bench_irq: boot\r\n");
    nvic_set_priority(BENCH_IRQ, BENCH_PRIORITY);
    nvic_enable_irq(BENCH_IRQ);
    for (uint32_t i = 0; i < BENCH_ITERATIONS; i++) {
        nvic_trigger(BENCH_IRQ);
        __DSB();
        __ISB();
        while (bench_isr_count <= i) {
        }
    }
    uart_print_hex("bench_irq: isr_count=", bench_isr_count);
    uart_print("bench_irq: done\r\n");
#ifdef BENCH_EXIT
    semihosting_exit();
#endif
    return 0;
}
