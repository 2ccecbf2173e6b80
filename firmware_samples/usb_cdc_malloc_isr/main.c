/* Seed 000: ST's USB device stack allocates the CDC class state with malloc from OTG_FS_IRQHandler
 * (… → USBD_SetClassConfig → USBD_CDC_Init → USBD_malloc) and frees it there on
 * SET_CONFIGURATION 0. With an RTOS the heap lock is a mutex, so the ISR calls osMutexAcquire. */
#include <stdlib.h>
#include <string.h>
#include "board.h"
#include "cmsis_os2.h"
#include "heap_lock.h"
#include "stm32_hal_pcd.h"
#include "uart.h"
#include "usbd_cdc.h"
#include "usbd_def.h"

#define OTG_FS_PRIORITY 6u

USBD_HandleTypeDef hUsbDeviceFS;

static void MX_USB_DEVICE_Init(void)
{
    USBD_Init(&hUsbDeviceFS, &hpcd_USB_OTG_FS, 0);
    hpcd_USB_OTG_FS.pData = &hUsbDeviceFS;
    USBD_RegisterClass(&hUsbDeviceFS, &USBD_CDC);
    HAL_PCD_Start(&hpcd_USB_OTG_FS);
    nvic_set_priority(OTG_FS_IRQn, OTG_FS_PRIORITY);
    nvic_enable_irq(OTG_FS_IRQn);
}

/* The host's side: a SETUP packet lands in the EP0 FIFO, the core reports it in GRXSTSP and
 * GINTSTS.RXFLVL and raises OTG_FS_IRQn; the core takes it before the next instruction. */
static void usb_host_send_setup(uint8_t bmRequest, uint8_t bRequest, uint16_t wValue, uint16_t wIndex)
{
    usb_otg_fs_dfifo0[0] = bmRequest | (uint32_t)bRequest << 8 | (uint32_t)wValue << 16;
    usb_otg_fs_dfifo0[1] = wIndex;
    USB_OTG_FS->GRXSTSP = STS_SETUP_UPDT << USB_OTG_GRXSTSP_PKTSTS_Pos | 8u << USB_OTG_GRXSTSP_BCNT_Pos;
    USB_OTG_FS->GINTSTS |= USB_OTG_GINTSTS_RXFLVL;
    nvic_trigger(OTG_FS_IRQn);
    __DSB();
    __ISB();
}

static void host_enumerates_and_configures(void)
{
    usb_host_send_setup(0x00, USB_REQ_SET_ADDRESS, 7, 0);
    usb_host_send_setup(0x00, USB_REQ_SET_CONFIGURATION, 1, 0);
    usb_host_send_setup(0x21, CDC_SET_CONTROL_LINE_STATE, 0x3, 0);
}

static void host_deconfigures(void)
{
    usb_host_send_setup(0x00, USB_REQ_SET_CONFIGURATION, 0, 0);
}

int main(void)
{
    uart_init();
    uart_print("usb_cdc_malloc_isr: boot\r\n");
    heap_lock_init();

    char *app_buffer = malloc(128); /* thread mode uses the same heap */
    strcpy(app_buffer, "usb_cdc_malloc_isr: heap in use by thread mode\r\n");
    uart_print(app_buffer);

    MX_USB_DEVICE_Init();
    for (int session = 1; session <= 2; session++) {
        host_enumerates_and_configures();
        uart_print_hex("usb_cdc_malloc_isr: configured, CDC handle at ", (unsigned)hUsbDeviceFS.pClassData);
        host_deconfigures();
        uart_print_hex("usb_cdc_malloc_isr: deconfigured, CDC handle ", (unsigned)hUsbDeviceFS.pClassData);
    }

    free(app_buffer);
    char *summary = malloc(64);
    strcpy(summary, "usb_cdc_malloc_isr: host gone, heap still in use\r\n");
    uart_print(summary);
    free(summary);

    if (os_isr_misuse.count > 0 && os_isr_misuse.first_ipsr == 16u + OTG_FS_IRQn) {
        uart_print("usb_cdc_malloc_isr: BUG heap mutex called from OTG_FS ISR: ");
        uart_print(os_isr_misuse.first_function);
        uart_print_hex(", IPSR ", os_isr_misuse.first_ipsr);
    }
    uart_print("usb_cdc_malloc_isr: done\r\n");
    return 0;
}
