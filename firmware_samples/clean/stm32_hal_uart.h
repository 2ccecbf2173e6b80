/* A HAL-style UART handle with the HAL's Lock field, used from thread mode only. */
#ifndef STM32_HAL_UART_H
#define STM32_HAL_UART_H
#include <stdint.h>

typedef enum { HAL_OK = 0, HAL_ERROR, HAL_BUSY, HAL_TIMEOUT } HAL_StatusTypeDef;
typedef enum { HAL_UNLOCKED = 0, HAL_LOCKED = 1 } HAL_LockTypeDef;

typedef struct {
    uint32_t Instance;
    volatile HAL_LockTypeDef Lock;
} UART_HandleTypeDef;

extern UART_HandleTypeDef huart1;

HAL_StatusTypeDef HAL_UART_Transmit(UART_HandleTypeDef *huart, const uint8_t *pData, uint16_t Size,
                                    uint32_t Timeout);

#endif
