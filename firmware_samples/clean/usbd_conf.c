#include <stdint.h>
#include "stm32_hal_pcd.h"
#include "usbd_cdc.h"
#include "usbd_conf.h"
#include "usbd_def.h"

/* One configuration, one class: one block, handed out by the class Init and back on DeInit. */
static uint32_t cdc_class_block[(sizeof(USBD_CDC_HandleTypeDef) + 3u) / 4u];
static uint8_t cdc_class_block_in_use;

__attribute__((noinline)) void *USBD_static_malloc(size_t size)
{
    if (size > sizeof cdc_class_block || cdc_class_block_in_use)
        return NULL;
    cdc_class_block_in_use = 1;
    return cdc_class_block;
}

__attribute__((noinline)) void USBD_static_free(void *p)
{
    if (p == cdc_class_block)
        cdc_class_block_in_use = 0;
}

USBD_StatusTypeDef USBD_LL_PrepareReceive(USBD_HandleTypeDef *pdev, uint8_t ep_addr, uint8_t *pbuf)
{
    ((PCD_HandleTypeDef *)pdev->pData)->OutXferBuff[ep_addr % PCD_OUT_ENDPOINTS] = pbuf;
    return USBD_OK;
}

uint32_t USBD_LL_GetRxDataSize(USBD_HandleTypeDef *pdev, uint8_t ep_addr)
{
    return ((PCD_HandleTypeDef *)pdev->pData)->OutXferCount[ep_addr % PCD_OUT_ENDPOINTS];
}

__attribute__((noinline)) void HAL_PCD_SetupStageCallback(PCD_HandleTypeDef *hpcd)
{
    USBD_LL_SetupStage(hpcd->pData, (uint8_t *)hpcd->Setup);
}

__attribute__((noinline)) void HAL_PCD_DataOutStageCallback(PCD_HandleTypeDef *hpcd, uint8_t epnum)
{
    USBD_LL_DataOutStage(hpcd->pData, epnum);
}
