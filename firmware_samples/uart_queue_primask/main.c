/* Seed 002: serial_puts() brackets its queue update with cpsid i / cpsie i. Called from the USB
 * ISR inside that ISR's own interrupts-off section, its cpsie turns interrupts back on early and
 * the more urgent USART1 TX ISR runs in the middle of a record the USB ISR meant to queue whole. */
#include "board.h"
#include "serial_queue.h"

#define OTG_FS_PRIORITY 6u

/* QEMU does not model OTG_FS: the received CDC packet is this RAM buffer and the host's
 * OUT transfer pends OTG_FS_IRQn (67) through STIR. */
static char usb_rx_packet[32];

__attribute__((noinline)) void CDC_Receive_FS(const char *packet)
{
    __disable_irq(); /* the record goes into the queue in one piece */
    tx_queue.writer = WRITER_USB;
    serial_puts("usb rx: ");
    serial_puts(packet);
    serial_puts("\r\n");
    tx_queue.writer = WRITER_NONE;
    __enable_irq();
}

void OTG_FS_IRQHandler(void)
{
    CDC_Receive_FS(usb_rx_packet);
}

static void usb_host_sends(const char *text)
{
    char *dst = usb_rx_packet;
    while (*text && dst < usb_rx_packet + sizeof usb_rx_packet - 1)
        *dst++ = *text++;
    *dst = '\0';
    nvic_trigger(OTG_FS_IRQn);
    __DSB();
    __ISB();
}

int main(void)
{
    serial_init();
    serial_puts("uart_queue_primask: boot\r\n");
    nvic_set_priority(OTG_FS_IRQn, OTG_FS_PRIORITY);
    nvic_enable_irq(OTG_FS_IRQn);

    static const char *const packets[] = {"AT", "ATI", "AT+GMR"};
    for (unsigned i = 0; i < sizeof packets / sizeof packets[0]; i++) {
        serial_puts("uart_queue_primask: host packet\r\n");
        serial_flush();
        usb_host_sends(packets[i]);
        serial_flush();
    }

    if (tx_queue.sent_from_open_record > 0)
        serial_puts("uart_queue_primask: BUG USART1 ISR ran inside the USB ISR's critical section "
                    "(sent characters of an unfinished record)\r\n");
    serial_puts("uart_queue_primask: done\r\n");
    serial_flush();
    return 0;
}
