#ifndef UART_H
#define UART_H
/* Polled USART1 output: progress lines a test reads from QEMU's serial0. */
void uart_init(void);
void uart_putc(char c);
void uart_print(const char *s);
void uart_print_hex(const char *label, unsigned value);
#endif
