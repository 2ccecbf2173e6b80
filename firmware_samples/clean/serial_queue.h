#ifndef SERIAL_QUEUE_H
#define SERIAL_QUEUE_H
#include <stdint.h>

#define TX_QUEUE_SIZE 512u

typedef enum { WRITER_NONE = 0, WRITER_USB } tx_writer_t;

/* Serial output queue shared by mainline, the USART1 TX ISR and the USB ISR. A writer that puts
 * a record in several parts marks itself in `writer` and keeps interrupts off until the last one. */
typedef struct {
    char buf[TX_QUEUE_SIZE];
    volatile uint32_t head;
    volatile uint32_t tail;
    volatile uint32_t count;
    volatile tx_writer_t writer;
    volatile uint32_t dropped;
    volatile uint32_t sent_from_open_record;
} tx_queue_t;

extern tx_queue_t tx_queue;

void serial_init(void);
void serial_write(const char *s, uint32_t len);
void serial_puts(const char *s);
void serial_flush(void);

#endif
