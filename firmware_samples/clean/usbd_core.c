/* USB device core: the SETUP stage, the standard device requests it dispatches, OUT data. */
#include "usbd_def.h"

USBD_StatusTypeDef USBD_Init(USBD_HandleTypeDef *pdev, void *pcd, uint8_t id)
{
    pdev->id = id;
    pdev->pData = pcd;
    pdev->pClass = 0;
    pdev->pClassData = 0;
    pdev->dev_config = 0;
    pdev->dev_state = USBD_STATE_DEFAULT;
    return USBD_OK;
}

USBD_StatusTypeDef USBD_RegisterClass(USBD_HandleTypeDef *pdev, const USBD_ClassTypeDef *pclass)
{
    pdev->pClass = pclass;
    return USBD_OK;
}

__attribute__((noinline)) USBD_StatusTypeDef USBD_LL_DataOutStage(USBD_HandleTypeDef *pdev, uint8_t epnum)
{
    if (pdev->dev_state != USBD_STATE_CONFIGURED || pdev->pClass->DataOut == 0)
        return USBD_FAIL;
    return (USBD_StatusTypeDef)pdev->pClass->DataOut(pdev, epnum);
}

static void USBD_CtlError(USBD_HandleTypeDef *pdev)
{
    pdev->ep0_stalls++; /* the real core stalls EP0 here */
}

static void USBD_ParseSetupRequest(USBD_SetupReqTypedef *req, const uint8_t *pdata)
{
    req->bmRequest = pdata[0];
    req->bRequest = pdata[1];
    req->wValue = (uint16_t)(pdata[2] | (pdata[3] << 8));
    req->wIndex = (uint16_t)(pdata[4] | (pdata[5] << 8));
    req->wLength = (uint16_t)(pdata[6] | (pdata[7] << 8));
}

__attribute__((noinline)) USBD_StatusTypeDef USBD_LL_SetupStage(USBD_HandleTypeDef *pdev, uint8_t *psetup)
{
    USBD_ParseSetupRequest(&pdev->request, psetup);
    switch (pdev->request.bmRequest & USB_REQ_RECIPIENT_MASK) {
    case USB_REQ_RECIPIENT_DEVICE:
        return USBD_StdDevReq(pdev, &pdev->request);
    case USB_REQ_RECIPIENT_INTERFACE:
        if (pdev->dev_state == USBD_STATE_CONFIGURED && pdev->pClass->Setup != 0)
            return (USBD_StatusTypeDef)pdev->pClass->Setup(pdev, &pdev->request);
        USBD_CtlError(pdev);
        return USBD_FAIL;
    default:
        USBD_CtlError(pdev);
        return USBD_FAIL;
    }
}

__attribute__((noinline)) USBD_StatusTypeDef USBD_StdDevReq(USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req)
{
    switch (req->bRequest) {
    case USB_REQ_SET_ADDRESS:
        pdev->dev_address = (uint8_t)(req->wValue & 0x7Fu);
        pdev->dev_state = pdev->dev_address ? USBD_STATE_ADDRESSED : USBD_STATE_DEFAULT;
        return USBD_OK;
    case USB_REQ_SET_CONFIGURATION:
        return USBD_SetConfig(pdev, req);
    default:
        USBD_CtlError(pdev);
        return USBD_FAIL;
    }
}

__attribute__((noinline)) USBD_StatusTypeDef USBD_SetConfig(USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req)
{
    uint8_t cfgidx = (uint8_t)req->wValue;
    if (cfgidx > USBD_MAX_NUM_CONFIGURATION) {
        USBD_CtlError(pdev);
        return USBD_FAIL;
    }
    switch (pdev->dev_state) {
    case USBD_STATE_ADDRESSED:
        if (cfgidx == 0)
            return USBD_OK;
        pdev->dev_config = cfgidx;
        if (USBD_SetClassConfig(pdev, cfgidx) != USBD_OK) {
            USBD_CtlError(pdev);
            return USBD_FAIL;
        }
        pdev->dev_state = USBD_STATE_CONFIGURED;
        return USBD_OK;
    case USBD_STATE_CONFIGURED:
        if (cfgidx == 0) {
            pdev->dev_state = USBD_STATE_ADDRESSED;
            pdev->dev_config = 0;
            return USBD_ClrClassConfig(pdev, cfgidx);
        }
        return USBD_OK;
    default:
        USBD_CtlError(pdev);
        return USBD_FAIL;
    }
}

__attribute__((noinline)) USBD_StatusTypeDef USBD_SetClassConfig(USBD_HandleTypeDef *pdev, uint8_t cfgidx)
{
    if (pdev->pClass == 0)
        return USBD_FAIL;
    return (USBD_StatusTypeDef)pdev->pClass->Init(pdev, cfgidx);
}

__attribute__((noinline)) USBD_StatusTypeDef USBD_ClrClassConfig(USBD_HandleTypeDef *pdev, uint8_t cfgidx)
{
    if (pdev->pClass == 0)
        return USBD_FAIL;
    return (USBD_StatusTypeDef)pdev->pClass->DeInit(pdev, cfgidx);
}
