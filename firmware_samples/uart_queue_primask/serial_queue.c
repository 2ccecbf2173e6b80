/* Interrupt-driven USART1 output. QEMU's USART keeps TXE set and raises its IRQ while TXE and
 * TXEIE are both set, so enabling TXEIE starts the TX ISR at once, one character per interrupt. */
#include "board.h"
#include "serial_queue.h"

#define USART1_PRIORITY 4u /* more urgent than the USB ISR */

tx_queue_t tx_queue;

void serial_init(void)
{
    USART_BRR(USART1_BASE) = 0x2D9; /* 115200 baud at 84 MHz APB2 on a real board */
    USART_CR1(USART1_BASE) = USART_CR1_UE | USART_CR1_TE;
    nvic_set_priority(USART1_IRQn, USART1_PRIORITY);
    nvic_enable_irq(USART1_IRQn);
}

/* Written for mainline: interrupts off, then back on, whoever the caller is. */
__attribute__((noinline)) void serial_puts(const char *s)
{
    __disable_irq();
    for (; *s; s++) {
        if (tx_queue.count == TX_QUEUE_SIZE) {
            tx_queue.dropped++;
            continue;
        }
        tx_queue.buf[tx_queue.head] = *s;
        tx_queue.head = (tx_queue.head + 1u) % TX_QUEUE_SIZE;
        tx_queue.count++;
    }
    USART_CR1(USART1_BASE) |= USART_CR1_TXEIE;
    __enable_irq();
}

void serial_flush(void)
{
    while (tx_queue.count != 0) {
    }
}

void USART1_IRQHandler(void)
{
    if (!(USART_SR(USART1_BASE) & USART_SR_TXE))
        return;
    if (tx_queue.count == 0) {
        USART_CR1(USART1_BASE) &= ~USART_CR1_TXEIE;
        return;
    }
    if (tx_queue.writer != WRITER_NONE)
        tx_queue.sent_from_open_record++;
    USART_DR(USART1_BASE) = (unsigned char)tx_queue.buf[tx_queue.tail];
    tx_queue.tail = (tx_queue.tail + 1u) % TX_QUEUE_SIZE;
    tx_queue.count--;
}
