/* USB OTG_FS as the HAL's PCD driver sees it. QEMU does not model OTG_FS: its global registers
 * are a RAM struct with the layout of RM0090 section 34.16, its receive FIFO RAM words,
 * and a test host fills them and pends OTG_FS_IRQn (67) the way the core would. */
#ifndef STM32_HAL_PCD_H
#define STM32_HAL_PCD_H
#include <stdint.h>

typedef struct {
    volatile uint32_t GOTGCTL;            /* 0x000 */
    volatile uint32_t GOTGINT;            /* 0x004 */
    volatile uint32_t GAHBCFG;            /* 0x008 */
    volatile uint32_t GUSBCFG;            /* 0x00C */
    volatile uint32_t GRSTCTL;            /* 0x010 */
    volatile uint32_t GINTSTS;            /* 0x014 */
    volatile uint32_t GINTMSK;            /* 0x018 */
    volatile uint32_t GRXSTSR;            /* 0x01C */
    volatile uint32_t GRXSTSP;            /* 0x020 */
    volatile uint32_t GRXFSIZ;            /* 0x024 */
    volatile uint32_t DIEPTXF0_HNPTXFSIZ; /* 0x028 */
    volatile uint32_t HNPTXSTS;           /* 0x02C */
    uint32_t Reserved30[2];               /* 0x030 */
    volatile uint32_t GCCFG;              /* 0x038 */
    volatile uint32_t CID;                /* 0x03C */
} USB_OTG_GlobalTypeDef;

#define USB_OTG_GAHBCFG_GINT      (1u << 0)
#define USB_OTG_GINTSTS_RXFLVL    (1u << 4)
#define USB_OTG_GINTMSK_RXFLVLM   (1u << 4)
#define USB_OTG_GRXSTSP_EPNUM     (0xFu << 0)
#define USB_OTG_GRXSTSP_BCNT_Pos  4u
#define USB_OTG_GRXSTSP_BCNT      (0x7FFu << USB_OTG_GRXSTSP_BCNT_Pos)
#define USB_OTG_GRXSTSP_PKTSTS_Pos 17u
#define USB_OTG_GRXSTSP_PKTSTS    (0xFu << USB_OTG_GRXSTSP_PKTSTS_Pos)
#define STS_DATA_UPDT             2u
#define STS_SETUP_UPDT            6u
#define USB_FS_MAX_PACKET_SIZE    64u
#define PCD_OUT_ENDPOINTS         4u /* OTG_FS has endpoints 0..3 */

extern USB_OTG_GlobalTypeDef usb_otg_fs_global;
extern volatile uint32_t usb_otg_fs_dfifo0[USB_FS_MAX_PACKET_SIZE / 4u];
#define USB_OTG_FS (&usb_otg_fs_global)

typedef struct {
    USB_OTG_GlobalTypeDef *Instance;
    uint32_t Setup[12]; /* SETUP packets as read from the FIFO */
    uint8_t *OutXferBuff[PCD_OUT_ENDPOINTS]; /* set through USBD_LL_PrepareReceive */
    uint32_t OutXferCount[PCD_OUT_ENDPOINTS];
    void *pData;        /* the USB device core's handle */
} PCD_HandleTypeDef;

extern PCD_HandleTypeDef hpcd_USB_OTG_FS;

void HAL_PCD_Start(PCD_HandleTypeDef *hpcd);
void HAL_PCD_IRQHandler(PCD_HandleTypeDef *hpcd);
void HAL_PCD_SetupStageCallback(PCD_HandleTypeDef *hpcd);
void HAL_PCD_DataOutStageCallback(PCD_HandleTypeDef *hpcd, uint8_t epnum);

#endif
