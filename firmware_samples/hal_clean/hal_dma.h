/* An STM32 HAL-style memory-to-memory DMA driver with the HAL's handle lock: the lock marks the
 * stream busy from the start of a transfer to its completion interrupt, as ST's HAL_DMA does. */
#ifndef HAL_DMA_H
#define HAL_DMA_H
#include <stddef.h>
#include "board.h"
#include "hal_def.h"

typedef enum { HAL_DMA_STATE_READY = 1, HAL_DMA_STATE_BUSY = 2 } HAL_DMA_StateTypeDef;

typedef struct __DMA_HandleTypeDef {
    IRQn_Type IRQn;     /* the stream's interrupt */
    HAL_LockTypeDef Lock;
    volatile HAL_DMA_StateTypeDef State;
    void (*XferCpltCallback)(struct __DMA_HandleTypeDef *hdma);
} DMA_HandleTypeDef;

HAL_StatusTypeDef HAL_DMA_Init(DMA_HandleTypeDef *hdma);
HAL_StatusTypeDef HAL_DMA_Start_IT(DMA_HandleTypeDef *hdma, const uint32_t *src, uint32_t *dst, size_t words);
void HAL_DMA_IRQHandler(DMA_HandleTypeDef *hdma);
/* The stream's transfer-complete event (QEMU has no DMA model: software pends the interrupt). */
void DMA_TransferComplete(DMA_HandleTypeDef *hdma);
#endif
