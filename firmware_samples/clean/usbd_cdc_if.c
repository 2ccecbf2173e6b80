/* The application's CDC callbacks: data from the host is echoed to USART1 as one record. */
#include "board.h"
#include "serial_queue.h"
#include "usbd_cdc.h"

__attribute__((noinline)) static int8_t CDC_Receive_FS(uint8_t *Buf, uint32_t *Len)
{
    uint32_t primask = __get_PRIMASK();
    __disable_irq(); /* the record goes into the queue in one piece */
    tx_queue.writer = WRITER_USB;
    serial_puts("usb rx: ");
    serial_write((const char *)Buf, *Len);
    serial_puts("\r\n");
    tx_queue.writer = WRITER_NONE;
    __set_PRIMASK(primask);
    return 0;
}

const USBD_CDC_ItfTypeDef USBD_Interface_fops_FS = {.Receive = CDC_Receive_FS};
