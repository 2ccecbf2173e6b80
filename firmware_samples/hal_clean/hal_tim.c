/* HAL-style timer driver written for this sample: configuration under the handle lock, released
 * before the update interrupt is enabled; the IRQ handler takes no lock and calls the user's
 * callback, which may stop the timer (taking the lock, free at that point). */
#include <stddef.h>
#include "board.h"
#include "hal_tim.h"

#define NOINLINE __attribute__((noinline))

NOINLINE HAL_StatusTypeDef HAL_TIM_Base_Init(TIM_HandleTypeDef *htim)
{
    __HAL_LOCK(htim);
    htim->State = HAL_TIM_STATE_BUSY;
    TIM_CR1(htim->Instance) = 0;
    htim->State = HAL_TIM_STATE_READY;
    __HAL_UNLOCK(htim);
    return HAL_OK;
}

NOINLINE HAL_StatusTypeDef HAL_TIM_Base_Start_IT(TIM_HandleTypeDef *htim)
{
    __HAL_LOCK(htim);
    if (htim->State != HAL_TIM_STATE_READY) {
        __HAL_UNLOCK(htim);
        return HAL_ERROR;
    }
    htim->State = HAL_TIM_STATE_BUSY;
    __HAL_UNLOCK(htim);
    tim_start_periodic(htim->Instance, htim->Prescaler, htim->Period); /* the interrupt may come at once */
    return HAL_OK;
}

NOINLINE HAL_StatusTypeDef HAL_TIM_Base_Stop_IT(TIM_HandleTypeDef *htim)
{
    __HAL_LOCK(htim);
    TIM_DIER(htim->Instance) = 0;
    TIM_CR1(htim->Instance) = 0;
    htim->State = HAL_TIM_STATE_READY;
    __HAL_UNLOCK(htim);
    return HAL_OK;
}

void HAL_TIM_IRQHandler(TIM_HandleTypeDef *htim)
{
    if ((TIM_SR(htim->Instance) & TIM_SR_UIF) == 0u)
        return;
    TIM_SR(htim->Instance) = 0;
    if (htim->PeriodElapsedCallback != NULL)
        htim->PeriodElapsedCallback(htim);
}
