/* HAL-style DMA driver written for this sample. Start_IT takes the handle lock and returns with
 * it held: the stream is busy. The completion interrupt releases it before it calls the user's
 * callback, so the callback may start the next transfer (whose completion releases it again). */
#include "hal_dma.h"

#define NOINLINE __attribute__((noinline))

NOINLINE HAL_StatusTypeDef HAL_DMA_Init(DMA_HandleTypeDef *hdma)
{
    hdma->Lock = HAL_UNLOCKED;
    hdma->State = HAL_DMA_STATE_READY;
    nvic_enable_irq(hdma->IRQn);
    return HAL_OK;
}

NOINLINE HAL_StatusTypeDef HAL_DMA_Start_IT(DMA_HandleTypeDef *hdma, const uint32_t *src, uint32_t *dst, size_t words)
{
    __HAL_LOCK(hdma);
    if (hdma->State != HAL_DMA_STATE_READY) {
        __HAL_UNLOCK(hdma);
        return HAL_BUSY;
    }
    hdma->State = HAL_DMA_STATE_BUSY;
    for (size_t i = 0; i < words; i++) /* the copy the stream would make */
        dst[i] = src[i];
    return HAL_OK;
}

void HAL_DMA_IRQHandler(DMA_HandleTypeDef *hdma)
{
    if (hdma->State != HAL_DMA_STATE_BUSY)
        return;
    __HAL_UNLOCK(hdma);
    hdma->State = HAL_DMA_STATE_READY;
    if (hdma->XferCpltCallback != NULL)
        hdma->XferCpltCallback(hdma);
}

void DMA_TransferComplete(DMA_HandleTypeDef *hdma)
{
    nvic_trigger(hdma->IRQn);
}
