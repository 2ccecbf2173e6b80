/* Types of the USB device core, named as in ST's USB device library. */
#ifndef USBD_DEF_H
#define USBD_DEF_H
#include <stdint.h>

#define USB_REQ_RECIPIENT_MASK   0x1Fu
#define USB_REQ_RECIPIENT_DEVICE 0x00u
#define USB_REQ_RECIPIENT_INTERFACE 0x01u
#define USB_REQ_TYPE_MASK        0x60u
#define USB_REQ_TYPE_CLASS       0x20u
#define USB_REQ_SET_ADDRESS      0x05u
#define USB_REQ_SET_CONFIGURATION 0x09u
#define USBD_MAX_NUM_CONFIGURATION 1u

#define USBD_STATE_DEFAULT    0x01u
#define USBD_STATE_ADDRESSED  0x02u
#define USBD_STATE_CONFIGURED 0x03u

typedef enum { USBD_OK = 0, USBD_BUSY, USBD_EMEM, USBD_FAIL } USBD_StatusTypeDef;

typedef struct {
    uint8_t bmRequest;
    uint8_t bRequest;
    uint16_t wValue;
    uint16_t wIndex;
    uint16_t wLength;
} USBD_SetupReqTypedef;

struct _USBD_HandleTypeDef;

typedef struct _Device_cb {
    uint8_t (*Init)(struct _USBD_HandleTypeDef *pdev, uint8_t cfgidx);
    uint8_t (*DeInit)(struct _USBD_HandleTypeDef *pdev, uint8_t cfgidx);
    uint8_t (*Setup)(struct _USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req);
    uint8_t (*DataOut)(struct _USBD_HandleTypeDef *pdev, uint8_t epnum);
} USBD_ClassTypeDef;

typedef struct _USBD_HandleTypeDef {
    uint8_t id;
    uint32_t dev_config;
    volatile uint8_t dev_state;
    uint8_t dev_address;
    uint32_t ep0_stalls;
    USBD_SetupReqTypedef request;
    const USBD_ClassTypeDef *pClass;
    void *pClassData;
    void *pUserData; /* the class's application callbacks */
    void *pData; /* the PCD handle */
} USBD_HandleTypeDef;

USBD_StatusTypeDef USBD_Init(USBD_HandleTypeDef *pdev, void *pcd, uint8_t id);
USBD_StatusTypeDef USBD_RegisterClass(USBD_HandleTypeDef *pdev, const USBD_ClassTypeDef *pclass);
USBD_StatusTypeDef USBD_LL_SetupStage(USBD_HandleTypeDef *pdev, uint8_t *psetup);
USBD_StatusTypeDef USBD_LL_DataOutStage(USBD_HandleTypeDef *pdev, uint8_t epnum);
/* Low-level glue (usbd_conf.c): where an OUT endpoint's next packet goes, and its length. */
USBD_StatusTypeDef USBD_LL_PrepareReceive(USBD_HandleTypeDef *pdev, uint8_t ep_addr, uint8_t *pbuf);
uint32_t USBD_LL_GetRxDataSize(USBD_HandleTypeDef *pdev, uint8_t ep_addr);
USBD_StatusTypeDef USBD_StdDevReq(USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req);
USBD_StatusTypeDef USBD_SetConfig(USBD_HandleTypeDef *pdev, USBD_SetupReqTypedef *req);
USBD_StatusTypeDef USBD_SetClassConfig(USBD_HandleTypeDef *pdev, uint8_t cfgidx);
USBD_StatusTypeDef USBD_ClrClassConfig(USBD_HandleTypeDef *pdev, uint8_t cfgidx);

#endif
