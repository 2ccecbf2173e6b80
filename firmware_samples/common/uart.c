#include "uart.h"
#include "board.h"

void uart_init(void)
{
    USART_BRR(USART1_BASE) = 0x2D9; /* 115200 baud at 84 MHz APB2 on a real board */
    USART_CR1(USART1_BASE) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

void uart_putc(char c)
{
    while (!(USART_SR(USART1_BASE) & USART_SR_TXE)) {
    }
    USART_DR(USART1_BASE) = (unsigned char)c;
}

void uart_print(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_print_hex(const char *label, unsigned value)
{
    static const char digits[] = "0123456789abcdef";
    uart_print(label);
    uart_print("0x");
    for (int shift = 28; shift >= 0; shift -= 4)
        uart_putc(digits[(value >> shift) & 0xF]);
    uart_print("\r\n");
}
