/* Seed 001: two EXTI handlers of different priority mask their own line with `EXTI->IMR &= ~line`.
 * The read-modify-write is not atomic: EXTI1 (more urgent) preempts EXTI0 between EXTI0's load
 * and store, and EXTI0's store of its stale copy unmasks line 1 again. */
#include "board.h"
#include "uart.h"

#define EXTI_LINE0 (1u << 0)
#define EXTI_LINE1 (1u << 1)
#define EXTI0_PRIORITY 10u /* the less urgent handler, 'A' in the seed */
#define EXTI1_PRIORITY 5u  /* the more urgent handler, 'B' in the seed */

void EXTI0_IRQHandler(void)
{
    EXTI_PR = EXTI_LINE0;
    /* EXTI->IMR &= ~EXTI_LINE0, spelled out as its three steps. */
    uint32_t imr = EXTI_IMR;
    /* The EXTI1 edge arrives right now, between the load and the store: pend its IRQ and let
     * the core take it before the next instruction. */
    nvic_trigger(EXTI1_IRQn);
    __DSB();
    __ISB();
    imr &= ~EXTI_LINE0;
    EXTI_IMR = imr;
}

void EXTI1_IRQHandler(void)
{
    EXTI_PR = EXTI_LINE1;
    EXTI_IMR &= ~EXTI_LINE1;
}

int main(void)
{
    uart_init();
    uart_print("exti_imr_rmw_race: boot\r\n");

    EXTI_IMR = EXTI_LINE0 | EXTI_LINE1;
    nvic_set_priority(EXTI0_IRQn, EXTI0_PRIORITY);
    nvic_set_priority(EXTI1_IRQn, EXTI1_PRIORITY);
    nvic_enable_irq(EXTI0_IRQn);
    nvic_enable_irq(EXTI1_IRQn);
    uart_print_hex("exti_imr_rmw_race: IMR before ", EXTI_IMR);

    /* QEMU cannot raise EXTI lines from guest code: the EXTI0 edge is pended through the NVIC. */
    nvic_trigger(EXTI0_IRQn);
    __DSB();
    __ISB();

    uint32_t imr = EXTI_IMR;
    uart_print_hex("exti_imr_rmw_race: IMR after  ", imr);
    if (imr & EXTI_LINE1)
        uart_print("exti_imr_rmw_race: BUG lost update (EXTI1 masked itself, line 1 is unmasked again)\r\n");
    uart_print("exti_imr_rmw_race: done\r\n");
    return 0;
}
