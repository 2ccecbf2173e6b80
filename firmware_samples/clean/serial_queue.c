/* Interrupt-driven USART1 output, safe from any context: every queue update saves PRIMASK, masks,
 * and restores what it found (the seed's get_PRIMASK / disable / set_PRIMASK). */
#include <string.h>
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

__attribute__((noinline)) void serial_write(const char *s, uint32_t len)
{
    uint32_t primask = __get_PRIMASK();
    __disable_irq();
    for (uint32_t i = 0; i < len; i++) {
        if (tx_queue.count == TX_QUEUE_SIZE) {
            tx_queue.dropped++;
            continue;
        }
        tx_queue.buf[tx_queue.head] = s[i];
        tx_queue.head = (tx_queue.head + 1u) % TX_QUEUE_SIZE;
        tx_queue.count++;
    }
    USART_CR1(USART1_BASE) |= USART_CR1_TXEIE;
    __set_PRIMASK(primask);
}

void serial_puts(const char *s)
{
    serial_write(s, strlen(s));
}

void serial_flush(void)
{
    while (tx_queue.count != 0) {
    }
}

/* newlib's printf writes here; only thread mode prints. */
int _write(int fd, const char *buf, int len)
{
    (void)fd;
    serial_write(buf, (uint32_t)len);
    return len;
}

/* Sends while the data register is free: one character per interrupt on a real USART, the whole
 * queue at once on QEMU's, whose TXE never clears. */
void USART1_IRQHandler(void)
{
    uint32_t primask = __get_PRIMASK();
    __disable_irq();
    while ((USART_SR(USART1_BASE) & USART_SR_TXE) && tx_queue.count != 0) {
        if (tx_queue.writer != WRITER_NONE)
            tx_queue.sent_from_open_record++;
        USART_DR(USART1_BASE) = (unsigned char)tx_queue.buf[tx_queue.tail];
        tx_queue.tail = (tx_queue.tail + 1u) % TX_QUEUE_SIZE;
        tx_queue.count--;
    }
    if (tx_queue.count == 0)
        USART_CR1(USART1_BASE) &= ~USART_CR1_TXEIE;
    __set_PRIMASK(primask);
}
