/* The fixed form of the other samples' patterns, with busy but legal interrupt traffic:
 *  - EXTI0 (priority 10) and EXTI1 (5) update EXTI_IMR with PRIMASK saved and restored, so EXTI1,
 *    arriving inside EXTI0's read-modify-write, waits for the store (seed 001);
 *  - serial_write() restores the PRIMASK it found, so the USB ISR's record stays whole (seed 002);
 *  - the USB CDC class takes its state from a static pool: no heap, no mutex in the ISR (seed 000);
 *  - TIM2 (priority 6, below the syscall ceiling 5), pended from software, hands ticks to
 *    thread mode with xQueueGenericSendFromISR; thread mode reads them in vPortEnterCritical
 *    sections (seed 003);
 *  - the HAL UART Lock and printf are used from thread mode only (seeds 003, 004). */
#include <stdio.h>
#include "board.h"
#include "rtos_queue.h"
#include "serial_queue.h"
#include "stm32_hal_pcd.h"
#include "stm32_hal_uart.h"
#include "usbd_cdc.h"
#include "usbd_def.h"

#define EXTI_LINE0 (1u << 0)
#define EXTI_LINE1 (1u << 1)
#define EXTI0_PRIORITY 10u
#define EXTI1_PRIORITY 5u
#define OTG_FS_PRIORITY 6u
#define TIM2_PRIORITY 6u
#define EXTI_ROUNDS 3u
#define TIM2_TICKS 64u

static unsigned failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        failures++;
        printf("clean: UNEXPECTED %s\r\n", what);
    }
}

/* ---- EXTI: masked read-modify-write of the shared mask register ---- */

static void exti_mask_lines(uint32_t lines)
{
    uint32_t primask = __get_PRIMASK();
    __disable_irq();
    EXTI_IMR &= ~lines;
    __set_PRIMASK(primask);
}

static void exti_unmask_lines(uint32_t lines)
{
    uint32_t primask = __get_PRIMASK();
    __disable_irq();
    EXTI_IMR |= lines;
    __set_PRIMASK(primask);
}

void EXTI0_IRQHandler(void)
{
    EXTI_PR = EXTI_LINE0;
    uint32_t primask = __get_PRIMASK();
    __disable_irq();
    uint32_t imr = EXTI_IMR;
    /* The EXTI1 edge arrives at the same instant as in exti_imr_rmw_race; now it waits. */
    nvic_trigger(EXTI1_IRQn);
    __DSB();
    __ISB();
    EXTI_IMR = imr & ~EXTI_LINE0;
    __set_PRIMASK(primask); /* EXTI1 preempts here, after the store */
}

void EXTI1_IRQHandler(void)
{
    EXTI_PR = EXTI_LINE1;
    exti_mask_lines(EXTI_LINE1);
}

static void exti_rounds(void)
{
    nvic_set_priority(EXTI0_IRQn, EXTI0_PRIORITY);
    nvic_set_priority(EXTI1_IRQn, EXTI1_PRIORITY);
    nvic_enable_irq(EXTI0_IRQn);
    nvic_enable_irq(EXTI1_IRQn);
    for (unsigned round = 0; round < EXTI_ROUNDS; round++) {
        exti_unmask_lines(EXTI_LINE0 | EXTI_LINE1);
        nvic_trigger(EXTI0_IRQn); /* QEMU cannot raise EXTI lines from guest code */
        __DSB();
        __ISB();
        check(EXTI_IMR == 0, "EXTI_IMR not fully masked");
    }
    printf("clean: EXTI rounds %u, IMR 0x%02lx\r\n", EXTI_ROUNDS, EXTI_IMR);
}

/* ---- USB CDC: enumeration and data from the host, all in OTG_FS_IRQHandler ---- */

extern const USBD_CDC_ItfTypeDef USBD_Interface_fops_FS;
USBD_HandleTypeDef hUsbDeviceFS;

static void MX_USB_DEVICE_Init(void)
{
    USBD_Init(&hUsbDeviceFS, &hpcd_USB_OTG_FS, 0);
    hpcd_USB_OTG_FS.pData = &hUsbDeviceFS;
    USBD_RegisterClass(&hUsbDeviceFS, &USBD_CDC);
    USBD_CDC_RegisterInterface(&hUsbDeviceFS, &USBD_Interface_fops_FS);
    HAL_PCD_Start(&hpcd_USB_OTG_FS);
    nvic_set_priority(OTG_FS_IRQn, OTG_FS_PRIORITY);
    nvic_enable_irq(OTG_FS_IRQn);
}

/* The host's side: a packet lands in the receive FIFO, the core reports it in GRXSTSP and
 * GINTSTS.RXFLVL and raises OTG_FS_IRQn; the core takes it before the next instruction. */
static void usb_host_sends(uint32_t packet_status, uint8_t epnum, const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i += 4u) {
        uint32_t word = 0;
        for (uint32_t b = 0; b < 4u && i + b < len; b++)
            word |= (uint32_t)data[i + b] << (8u * b);
        usb_otg_fs_dfifo0[i / 4u] = word;
    }
    USB_OTG_FS->GRXSTSP = packet_status << USB_OTG_GRXSTSP_PKTSTS_Pos | len << USB_OTG_GRXSTSP_BCNT_Pos | epnum;
    USB_OTG_FS->GINTSTS |= USB_OTG_GINTSTS_RXFLVL;
    nvic_trigger(OTG_FS_IRQn);
    __DSB();
    __ISB();
}

static void usb_host_setup(uint8_t bmRequest, uint8_t bRequest, uint16_t wValue)
{
    const uint8_t setup[8] = {bmRequest, bRequest, (uint8_t)wValue, (uint8_t)(wValue >> 8)};
    usb_host_sends(STS_SETUP_UPDT, 0, setup, sizeof setup);
}

static void usb_session(void)
{
    static const char *const packets[] = {"AT", "ATI", "AT+GMR"};
    MX_USB_DEVICE_Init();
    usb_host_setup(0x00, USB_REQ_SET_ADDRESS, 7);
    usb_host_setup(0x00, USB_REQ_SET_CONFIGURATION, 1);
    usb_host_setup(0x21, CDC_SET_CONTROL_LINE_STATE, 0x3);
    check(hUsbDeviceFS.dev_state == USBD_STATE_CONFIGURED, "USB device not configured");
    for (unsigned i = 0; i < sizeof packets / sizeof packets[0]; i++) {
        const char *p = packets[i];
        uint32_t len = 0;
        while (p[len])
            len++;
        usb_host_sends(STS_DATA_UPDT, CDC_OUT_EP, (const uint8_t *)p, len);
        serial_flush();
    }
    usb_host_setup(0x00, USB_REQ_SET_CONFIGURATION, 0);
    check(hUsbDeviceFS.pClassData == NULL, "CDC class block not released");
    check(tx_queue.sent_from_open_record == 0, "USART1 ISR sent part of an unfinished USB record");
    printf("clean: USB configured and released, records whole\r\n");
}

/* ---- TIM2 → thread mode through an RTOS queue ---- */

static StaticQueue_t tick_queue_buffer;
static uint8_t tick_queue_storage[8 * sizeof(uint32_t)];
static QueueHandle_t tick_queue;
static uint32_t tim2_ticks;

void TIM2_IRQHandler(void)
{
    TIM_SR(TIM2_BASE) = ~TIM_SR_UIF;
    uint32_t tick = ++tim2_ticks;
    BaseType_t woken = pdFALSE;
    xQueueGenericSendFromISR(tick_queue, &tick, &woken, queueSEND_TO_BACK);
}

static void tim2_ticks_to_thread(void)
{
    tick_queue = xQueueCreateStatic(8, sizeof(uint32_t), tick_queue_storage, &tick_queue_buffer);
    nvic_set_priority(TIM2_IRQn, TIM2_PRIORITY);
    nvic_enable_irq(TIM2_IRQn);

    /* Each tick is TIM2's update interrupt pended from thread mode, taken at the ISB. QEMU runs its
     * timers on host time, so a free-running TIM2 would tick wherever a debugger's halts leave it:
     * at a different instruction in every run. */
    uint32_t received = 0, last = 0, in_order = 1;
    while (received < TIM2_TICKS) {
        nvic_trigger(TIM2_IRQn);
        __DSB();
        __ISB();
        uint32_t tick;
        while (tick_queue->uxMessagesWaiting > 0 && xQueueReceive(tick_queue, &tick, 0) == pdPASS) {
            in_order &= tick > last;
            last = tick;
            received++;
        }
    }
    nvic_disable_irq(TIM2_IRQn);
    check(in_order, "ticks out of order");
    check(port_priority_violations == 0, "FromISR call above the syscall ceiling");
    printf("clean: %lu TIM2 ticks received in thread mode\r\n", received);
}

int main(void)
{
    serial_init();
    printf("clean: boot\r\n");
    exti_rounds();
    usb_session();
    tim2_ticks_to_thread();

    fflush(stdout);
    serial_flush();
    static const char summary[] = "clean: summary sent with HAL_UART_Transmit\r\n";
    check(HAL_UART_Transmit(&huart1, (const uint8_t *)summary, sizeof summary - 1, 1000) == HAL_OK,
          "HAL_UART_Transmit failed");
    printf("clean: done\r\n");
    fflush(stdout);
    serial_flush();
    return 0;
}
