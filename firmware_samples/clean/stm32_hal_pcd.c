/* The part of the PCD driver SETUP and OUT packets go through: OTG_FS interrupt →
 * HAL_PCD_IRQHandler → HAL_PCD_SetupStageCallback / HAL_PCD_DataOutStageCallback (usbd_conf.c). */
#include "board.h"
#include "stm32_hal_pcd.h"

USB_OTG_GlobalTypeDef usb_otg_fs_global;
volatile uint32_t usb_otg_fs_dfifo0[USB_FS_MAX_PACKET_SIZE / 4u];
PCD_HandleTypeDef hpcd_USB_OTG_FS = {.Instance = USB_OTG_FS};

void HAL_PCD_Start(PCD_HandleTypeDef *hpcd)
{
    hpcd->Instance->GINTMSK |= USB_OTG_GINTMSK_RXFLVLM;
    hpcd->Instance->GAHBCFG |= USB_OTG_GAHBCFG_GINT;
}

void OTG_FS_IRQHandler(void)
{
    HAL_PCD_IRQHandler(&hpcd_USB_OTG_FS);
}

__attribute__((noinline)) void HAL_PCD_IRQHandler(PCD_HandleTypeDef *hpcd)
{
    USB_OTG_GlobalTypeDef *usb = hpcd->Instance;
    uint32_t pending = usb->GINTSTS & usb->GINTMSK;

    if (pending & USB_OTG_GINTSTS_RXFLVL) {
        uint32_t status = usb->GRXSTSP;
        usb->GINTSTS &= ~USB_OTG_GINTSTS_RXFLVL; /* the real core clears it when GRXSTSP is popped */
        uint32_t packet_status = (status & USB_OTG_GRXSTSP_PKTSTS) >> USB_OTG_GRXSTSP_PKTSTS_Pos;
        uint32_t byte_count = (status & USB_OTG_GRXSTSP_BCNT) >> USB_OTG_GRXSTSP_BCNT_Pos;
        uint8_t epnum = (uint8_t)(status & USB_OTG_GRXSTSP_EPNUM);
        if (packet_status == STS_SETUP_UPDT && byte_count == 8u) {
            hpcd->Setup[0] = usb_otg_fs_dfifo0[0];
            hpcd->Setup[1] = usb_otg_fs_dfifo0[1];
            HAL_PCD_SetupStageCallback(hpcd);
        } else if (packet_status == STS_DATA_UPDT && epnum < PCD_OUT_ENDPOINTS && hpcd->OutXferBuff[epnum] != 0
                   && byte_count <= USB_FS_MAX_PACKET_SIZE) {
            for (uint32_t i = 0; i < byte_count; i++)
                hpcd->OutXferBuff[epnum][i] = (uint8_t)(usb_otg_fs_dfifo0[i / 4u] >> (8u * (i % 4u)));
            hpcd->OutXferCount[epnum] = byte_count;
            HAL_PCD_DataOutStageCallback(hpcd, epnum);
        }
    }
}
