/* An STM32 HAL-style basic timer driver, interrupt mode, with the HAL's handle lock. */
#ifndef HAL_TIM_H
#define HAL_TIM_H
#include "hal_def.h"

typedef enum { HAL_TIM_STATE_RESET = 0, HAL_TIM_STATE_READY = 1, HAL_TIM_STATE_BUSY = 2 } HAL_TIM_StateTypeDef;

typedef struct __TIM_HandleTypeDef {
    uint32_t Instance;  /* the timer's register base */
    uint32_t Prescaler;
    uint32_t Period;
    HAL_LockTypeDef Lock;
    volatile HAL_TIM_StateTypeDef State;
    void (*PeriodElapsedCallback)(struct __TIM_HandleTypeDef *htim);
} TIM_HandleTypeDef;

HAL_StatusTypeDef HAL_TIM_Base_Init(TIM_HandleTypeDef *htim);
HAL_StatusTypeDef HAL_TIM_Base_Start_IT(TIM_HandleTypeDef *htim);
HAL_StatusTypeDef HAL_TIM_Base_Stop_IT(TIM_HandleTypeDef *htim);
void HAL_TIM_IRQHandler(TIM_HandleTypeDef *htim);
#endif
