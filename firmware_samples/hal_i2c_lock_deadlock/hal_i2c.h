/* An STM32 HAL-style I2C master driver, interrupt mode, with the HAL's handle lock (seed 004). */
#ifndef HAL_I2C_H
#define HAL_I2C_H
#include "hal_def.h"
#include "i2c_regs.h"

typedef enum {
    HAL_I2C_STATE_RESET = 0x00,
    HAL_I2C_STATE_READY = 0x20,
    HAL_I2C_STATE_BUSY_TX = 0x21,
    HAL_I2C_STATE_BUSY_RX = 0x22,
} HAL_I2C_StateTypeDef;

typedef enum {
    HAL_I2C_MODE_NONE = 0x00,
    HAL_I2C_MODE_MASTER = 0x10,
    HAL_I2C_MODE_MEM = 0x40,
} HAL_I2C_ModeTypeDef;

#define HAL_I2C_ERROR_NONE    0x00u
#define HAL_I2C_ERROR_BERR    0x01u
#define HAL_I2C_ERROR_ARLO    0x02u
#define HAL_I2C_ERROR_AF      0x04u
#define HAL_I2C_ERROR_OVR     0x08u
#define HAL_I2C_ERROR_TIMEOUT 0x20u
#define HAL_I2C_ERROR_SIZE    0x40u

#define I2C_MEMADD_SIZE_8BIT 1u
#define I2C_TIMEOUT_FLAG     25u /* ticks (ms), as the seed's HAL */

typedef struct __I2C_HandleTypeDef {
    I2C_TypeDef *Instance;
    uint8_t *pBuffPtr;
    uint16_t XferSize;
    volatile uint16_t XferCount;
    HAL_StatusTypeDef (*XferISR)(struct __I2C_HandleTypeDef *hi2c, uint32_t ITFlags, uint32_t ITSources);
    HAL_LockTypeDef Lock;
    volatile HAL_I2C_StateTypeDef State;
    volatile HAL_I2C_ModeTypeDef Mode;
    volatile uint32_t ErrorCode;
} I2C_HandleTypeDef;

/* Interrupt groups of I2C_Enable_IRQ / I2C_Disable_IRQ. */
#define I2C_XFER_TX_IT (I2C_CR1_TXIE | I2C_CR1_TCIE | I2C_CR1_STOPIE | I2C_CR1_NACKIE | I2C_CR1_ERRIE)
#define I2C_XFER_RX_IT (I2C_CR1_RXIE | I2C_CR1_TCIE | I2C_CR1_STOPIE | I2C_CR1_NACKIE | I2C_CR1_ERRIE)

HAL_StatusTypeDef HAL_I2C_Init(I2C_HandleTypeDef *hi2c);
HAL_StatusTypeDef HAL_I2C_Mem_Read_IT(I2C_HandleTypeDef *hi2c, uint16_t DevAddress, uint16_t MemAddress,
                                      uint16_t MemAddSize, uint8_t *pData, uint16_t Size);
void HAL_I2C_EV_IRQHandler(I2C_HandleTypeDef *hi2c);
void HAL_I2C_ER_IRQHandler(I2C_HandleTypeDef *hi2c);
void HAL_I2C_MemRxCpltCallback(I2C_HandleTypeDef *hi2c);
void HAL_I2C_ErrorCallback(I2C_HandleTypeDef *hi2c);

/* Counts loop turns of every thread-mode wait, so an ISR can tell whether thread mode ran at all. */
extern volatile uint32_t thread_wait_loops;
#endif
