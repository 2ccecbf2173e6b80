#include "board.h"
#include "stm32_hal_uart.h"

UART_HandleTypeDef huart1 = {.Instance = USART1_BASE, .Lock = HAL_UNLOCKED};

/* Polled transmit; Timeout counts status polls per character, there is no tick here. */
__attribute__((noinline)) HAL_StatusTypeDef HAL_UART_Transmit(UART_HandleTypeDef *huart, const uint8_t *pData,
                                                              uint16_t Size, uint32_t Timeout)
{
    if (huart->Lock == HAL_LOCKED)
        return HAL_BUSY;
    huart->Lock = HAL_LOCKED;
    HAL_StatusTypeDef status = HAL_OK;
    for (uint16_t i = 0; i < Size && status == HAL_OK; i++) {
        uint32_t polls = 0;
        while (!(USART_SR(huart->Instance) & USART_SR_TXE)) {
            if (++polls > Timeout) {
                status = HAL_TIMEOUT;
                break;
            }
        }
        if (status == HAL_OK)
            USART_DR(huart->Instance) = pData[i];
    }
    huart->Lock = HAL_UNLOCKED;
    return status;
}
