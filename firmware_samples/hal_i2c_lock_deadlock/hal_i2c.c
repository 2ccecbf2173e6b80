/* HAL-style I2C master driver written for this sample after the behaviour seed 004 describes:
 * the task-level call holds the handle lock across a 25-tick flag wait, the ISR takes the same
 * lock first thing, and the error path leaves XferISR NULL. */
#include <stddef.h>
#include "hal_i2c.h"

#define NOINLINE __attribute__((noinline))

typedef enum { I2C_SOFTEND_MODE = 0, I2C_AUTOEND_MODE = I2C_CR2_AUTOEND } I2C_EndMode;
typedef enum { I2C_GENERATE_START_WRITE = I2C_CR2_START, I2C_GENERATE_START_READ = I2C_CR2_START | I2C_CR2_RD_WRN } I2C_StartMode;

volatile uint32_t thread_wait_loops;

static HAL_StatusTypeDef I2C_Master_ISR_IT(I2C_HandleTypeDef *hi2c, uint32_t ITFlags, uint32_t ITSources);

HAL_StatusTypeDef HAL_I2C_Init(I2C_HandleTypeDef *hi2c)
{
    hi2c->Instance->CR1 = I2C_CR1_PE;
    hi2c->Lock = HAL_UNLOCKED;
    hi2c->ErrorCode = HAL_I2C_ERROR_NONE;
    hi2c->Mode = HAL_I2C_MODE_NONE;
    hi2c->State = HAL_I2C_STATE_READY;
    return HAL_OK;
}

static NOINLINE void I2C_TransferConfig(I2C_HandleTypeDef *hi2c, uint16_t DevAddress, uint8_t Size,
                                        I2C_EndMode EndMode, I2C_StartMode Request)
{
    hi2c->Instance->CR2 = (DevAddress & I2C_CR2_SADD) | ((uint32_t)Size << I2C_CR2_NBYTES_Pos) | EndMode | Request;
}

static void I2C_Enable_IRQ(I2C_HandleTypeDef *hi2c, uint32_t InterruptRequest)
{
    hi2c->Instance->CR1 |= InterruptRequest;
}

static void I2C_Disable_IRQ(I2C_HandleTypeDef *hi2c, uint32_t InterruptRequest)
{
    hi2c->Instance->CR1 &= ~InterruptRequest;
}

static NOINLINE HAL_StatusTypeDef I2C_WaitOnFlagUntilTimeout(I2C_HandleTypeDef *hi2c, uint32_t Flag,
                                                             uint32_t Timeout, uint32_t Tickstart)
{
    while ((hi2c->Instance->ISR & Flag) == 0u) {
        thread_wait_loops++;
        if (HAL_GetTick() - Tickstart > Timeout) {
            hi2c->ErrorCode |= HAL_I2C_ERROR_TIMEOUT;
            hi2c->State = HAL_I2C_STATE_READY;
            hi2c->Mode = HAL_I2C_MODE_NONE;
            __HAL_UNLOCK(hi2c);
            return HAL_TIMEOUT;
        }
    }
    return HAL_OK;
}

/* Polls TXIS against the tick while the caller holds hi2c->Lock. */
static NOINLINE HAL_StatusTypeDef I2C_WaitOnTXISFlagUntilTimeout(I2C_HandleTypeDef *hi2c, uint32_t Timeout,
                                                                 uint32_t Tickstart)
{
    while ((hi2c->Instance->ISR & I2C_ISR_TXIS) == 0u) {
        thread_wait_loops++;
        if (hi2c->Instance->ISR & I2C_ISR_NACKF) {
            hi2c->Instance->ICR = I2C_ICR_NACKCF;
            hi2c->ErrorCode |= HAL_I2C_ERROR_AF;
            return HAL_ERROR;
        }
        if (HAL_GetTick() - Tickstart > Timeout) {
            hi2c->ErrorCode |= HAL_I2C_ERROR_TIMEOUT;
            hi2c->State = HAL_I2C_STATE_READY;
            hi2c->Mode = HAL_I2C_MODE_NONE;
            __HAL_UNLOCK(hi2c);
            return HAL_TIMEOUT;
        }
    }
    return HAL_OK;
}

static NOINLINE HAL_StatusTypeDef I2C_RequestMemoryRead(I2C_HandleTypeDef *hi2c, uint16_t DevAddress,
                                                        uint16_t MemAddress, uint16_t MemAddSize,
                                                        uint32_t Timeout, uint32_t Tickstart)
{
    I2C_TransferConfig(hi2c, DevAddress, (uint8_t)MemAddSize, I2C_SOFTEND_MODE, I2C_GENERATE_START_WRITE);
    if (I2C_WaitOnTXISFlagUntilTimeout(hi2c, Timeout, Tickstart) != HAL_OK)
        return HAL_ERROR;
    hi2c->Instance->TXDR = MemAddress & 0xFFu;
    if (I2C_WaitOnFlagUntilTimeout(hi2c, I2C_ISR_TC, Timeout, Tickstart) != HAL_OK)
        return HAL_ERROR;
    return HAL_OK;
}

NOINLINE HAL_StatusTypeDef HAL_I2C_Mem_Read_IT(I2C_HandleTypeDef *hi2c, uint16_t DevAddress, uint16_t MemAddress,
                                               uint16_t MemAddSize, uint8_t *pData, uint16_t Size)
{
    if (hi2c->State != HAL_I2C_STATE_READY)
        return HAL_BUSY;
    if (pData == NULL || Size == 0u)
        return HAL_ERROR;
    if (hi2c->Instance->ISR & I2C_ISR_BUSY)
        return HAL_BUSY;

    __HAL_LOCK(hi2c);
    uint32_t tickstart = HAL_GetTick();
    hi2c->State = HAL_I2C_STATE_BUSY_RX;
    hi2c->Mode = HAL_I2C_MODE_MEM;
    hi2c->ErrorCode = HAL_I2C_ERROR_NONE;
    hi2c->pBuffPtr = pData;
    hi2c->XferCount = Size;
    hi2c->XferSize = Size;
    hi2c->XferISR = I2C_Master_ISR_IT;

    if (I2C_RequestMemoryRead(hi2c, DevAddress, MemAddress, MemAddSize, I2C_TIMEOUT_FLAG, tickstart) != HAL_OK) {
        __HAL_UNLOCK(hi2c);
        return (hi2c->ErrorCode & HAL_I2C_ERROR_AF) ? HAL_ERROR : HAL_TIMEOUT;
    }
    I2C_TransferConfig(hi2c, DevAddress, (uint8_t)hi2c->XferSize, I2C_AUTOEND_MODE, I2C_GENERATE_START_READ);
    __HAL_UNLOCK(hi2c);
    /* As in the HAL: interrupts are enabled only after the unlock. */
    I2C_Enable_IRQ(hi2c, I2C_XFER_RX_IT);
    return HAL_OK;
}

/* The error path: it resets the handle, leaves XferISR NULL and unlocks whoever held the lock. */
static NOINLINE void I2C_ITError(I2C_HandleTypeDef *hi2c, uint32_t ErrorCode)
{
    hi2c->Mode = HAL_I2C_MODE_NONE;
    hi2c->XferCount = 0u;
    hi2c->ErrorCode |= ErrorCode;
    I2C_Disable_IRQ(hi2c, I2C_XFER_TX_IT | I2C_XFER_RX_IT);
    hi2c->State = HAL_I2C_STATE_READY;
    hi2c->XferISR = NULL;
    __HAL_UNLOCK(hi2c);
    HAL_I2C_ErrorCallback(hi2c);
}

static NOINLINE void I2C_ITMasterCplt(I2C_HandleTypeDef *hi2c)
{
    hi2c->Instance->ICR = I2C_ICR_STOPCF;
    I2C_Disable_IRQ(hi2c, I2C_XFER_RX_IT);
    hi2c->XferISR = NULL;
    hi2c->State = HAL_I2C_STATE_READY;
    hi2c->Mode = HAL_I2C_MODE_NONE;
    __HAL_UNLOCK(hi2c);
    HAL_I2C_MemRxCpltCallback(hi2c);
}

/* Takes the handle lock first: while a task holds it, returns HAL_BUSY and leaves every flag set. */
static NOINLINE HAL_StatusTypeDef I2C_Master_ISR_IT(I2C_HandleTypeDef *hi2c, uint32_t ITFlags, uint32_t ITSources)
{
    __HAL_LOCK(hi2c);

    if ((ITFlags & I2C_ISR_NACKF) && (ITSources & I2C_CR1_NACKIE)) {
        hi2c->Instance->ICR = I2C_ICR_NACKCF;
        hi2c->ErrorCode |= HAL_I2C_ERROR_AF;
    } else if ((ITFlags & I2C_ISR_RXNE) && (ITSources & I2C_CR1_RXIE)) {
        *hi2c->pBuffPtr++ = (uint8_t)hi2c->Instance->RXDR;
        hi2c->XferSize--;
        hi2c->XferCount--;
    } else if ((ITFlags & I2C_ISR_TXIS) && (ITSources & I2C_CR1_TXIE)) {
        hi2c->Instance->TXDR = *hi2c->pBuffPtr++;
        hi2c->XferSize--;
        hi2c->XferCount--;
    } else if ((ITFlags & I2C_ISR_TC) && (ITSources & I2C_CR1_TCIE)) {
        if (hi2c->XferCount == 0u)
            hi2c->Instance->CR2 |= I2C_CR2_STOP;
        else
            I2C_ITError(hi2c, HAL_I2C_ERROR_SIZE);
    }
    if ((ITFlags & I2C_ISR_STOPF) && (ITSources & I2C_CR1_STOPIE))
        I2C_ITMasterCplt(hi2c);

    __HAL_UNLOCK(hi2c);
    return HAL_OK;
}

NOINLINE void HAL_I2C_EV_IRQHandler(I2C_HandleTypeDef *hi2c)
{
    uint32_t itflags = hi2c->Instance->ISR;
    uint32_t itsources = hi2c->Instance->CR1;
    if (hi2c->XferISR != NULL)
        hi2c->XferISR(hi2c, itflags, itsources);
}

NOINLINE void HAL_I2C_ER_IRQHandler(I2C_HandleTypeDef *hi2c)
{
    uint32_t itflags = hi2c->Instance->ISR;
    uint32_t itsources = hi2c->Instance->CR1;
    if (!(itsources & I2C_CR1_ERRIE))
        return;
    if (itflags & I2C_ISR_BERR) {
        hi2c->ErrorCode |= HAL_I2C_ERROR_BERR;
        hi2c->Instance->ICR = I2C_ICR_BERRCF;
    }
    if (itflags & I2C_ISR_OVR) {
        hi2c->ErrorCode |= HAL_I2C_ERROR_OVR;
        hi2c->Instance->ICR = I2C_ICR_OVRCF;
    }
    if (itflags & I2C_ISR_ARLO) {
        hi2c->ErrorCode |= HAL_I2C_ERROR_ARLO;
        hi2c->Instance->ICR = I2C_ICR_ARLOCF;
    }
    if (hi2c->ErrorCode & (HAL_I2C_ERROR_BERR | HAL_I2C_ERROR_OVR | HAL_I2C_ERROR_ARLO))
        I2C_ITError(hi2c, hi2c->ErrorCode);
}
