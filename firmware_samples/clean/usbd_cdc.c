/* CDC class callbacks, reached from the core through USBD_ClassTypeDef's function pointers. */
#include <string.h>
#include "usbd_cdc.h"
#include "usbd_conf.h"

static uint8_t USBD_CDC_Init(USBD_HandleTypeDef *pdev, uint8_t cfgidx);
static uint8_t USBD_CDC_DeInit(USBD_HandleTypeDef *pdev, uint8_t cfgidx);
static uint8_t USBD_CDC_Setup(USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req);
static uint8_t USBD_CDC_DataOut(USBD_HandleTypeDef *pdev, uint8_t epnum);

const USBD_ClassTypeDef USBD_CDC = {
    .Init = USBD_CDC_Init,
    .DeInit = USBD_CDC_DeInit,
    .Setup = USBD_CDC_Setup,
    .DataOut = USBD_CDC_DataOut,
};

__attribute__((noinline)) static uint8_t USBD_CDC_Init(USBD_HandleTypeDef *pdev, uint8_t cfgidx)
{
    (void)cfgidx;
    USBD_CDC_HandleTypeDef *hcdc = USBD_malloc(sizeof(USBD_CDC_HandleTypeDef));
    if (hcdc == NULL) {
        pdev->pClassData = NULL;
        return (uint8_t)USBD_EMEM;
    }
    memset(hcdc, 0, sizeof(*hcdc));
    hcdc->LineCoding = (USBD_CDC_LineCodingTypeDef){.bitrate = 115200u, .datatype = 8u};
    hcdc->RxBuffer = (uint8_t *)hcdc->data;
    pdev->pClassData = hcdc;
    USBD_LL_PrepareReceive(pdev, CDC_OUT_EP, hcdc->RxBuffer);
    return (uint8_t)USBD_OK;
}

__attribute__((noinline)) static uint8_t USBD_CDC_DeInit(USBD_HandleTypeDef *pdev, uint8_t cfgidx)
{
    (void)cfgidx;
    if (pdev->pClassData != NULL) {
        USBD_LL_PrepareReceive(pdev, CDC_OUT_EP, NULL);
        USBD_free(pdev->pClassData);
        pdev->pClassData = NULL;
    }
    return (uint8_t)USBD_OK;
}

__attribute__((noinline)) static uint8_t USBD_CDC_Setup(USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req)
{
    USBD_CDC_HandleTypeDef *hcdc = pdev->pClassData;
    if (hcdc == NULL || (req->bmRequest & USB_REQ_TYPE_MASK) != USB_REQ_TYPE_CLASS)
        return (uint8_t)USBD_FAIL;
    hcdc->CmdOpCode = req->bRequest;
    hcdc->CmdLength = (uint8_t)req->wLength;
    if (req->bRequest == CDC_SET_CONTROL_LINE_STATE)
        hcdc->ControlLineState = req->wValue;
    return (uint8_t)USBD_OK;
}

USBD_StatusTypeDef USBD_CDC_RegisterInterface(USBD_HandleTypeDef *pdev, const USBD_CDC_ItfTypeDef *fops)
{
    pdev->pUserData = (void *)fops;
    return USBD_OK;
}

__attribute__((noinline)) static uint8_t USBD_CDC_DataOut(USBD_HandleTypeDef *pdev, uint8_t epnum)
{
    USBD_CDC_HandleTypeDef *hcdc = pdev->pClassData;
    const USBD_CDC_ItfTypeDef *fops = pdev->pUserData;
    if (hcdc == NULL || fops == NULL)
        return (uint8_t)USBD_FAIL;
    hcdc->RxLength = USBD_LL_GetRxDataSize(pdev, epnum);
    fops->Receive(hcdc->RxBuffer, &hcdc->RxLength);
    return (uint8_t)USBD_OK;
}
