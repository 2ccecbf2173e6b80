#include <stdlib.h>
#include "stm32_hal_pcd.h"
#include "usbd_conf.h"
#include "usbd_def.h"

__attribute__((noinline)) void *USBD_malloc(size_t size)
{
    return malloc(size);
}

__attribute__((noinline)) void USBD_free(void *p)
{
    free(p);
}

__attribute__((noinline)) void HAL_PCD_SetupStageCallback(PCD_HandleTypeDef *hpcd)
{
    USBD_LL_SetupStage(hpcd->pData, (uint8_t *)hpcd->Setup);
}
