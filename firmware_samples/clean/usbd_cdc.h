/* The CDC-ACM class: its per-configuration state lives in a handle the class Init allocates. */
#ifndef USBD_CDC_H
#define USBD_CDC_H
#include "usbd_def.h"

#define CDC_DATA_FS_MAX_PACKET_SIZE 64u
#define CDC_SET_LINE_CODING         0x20u
#define CDC_SET_CONTROL_LINE_STATE  0x22u
#define CDC_OUT_EP                  0x01u

typedef struct {
    uint32_t bitrate;
    uint8_t format;
    uint8_t paritytype;
    uint8_t datatype;
} USBD_CDC_LineCodingTypeDef;

typedef struct {
    uint32_t data[CDC_DATA_FS_MAX_PACKET_SIZE / 4u];
    uint8_t CmdOpCode;
    uint8_t CmdLength;
    uint16_t ControlLineState;
    USBD_CDC_LineCodingTypeDef LineCoding;
    uint8_t *RxBuffer;
    uint8_t *TxBuffer;
    uint32_t RxLength;
    uint32_t TxLength;
    volatile uint32_t TxState;
    volatile uint32_t RxState;
} USBD_CDC_HandleTypeDef;

/* The application's side of the class (usbd_cdc_if.c). */
typedef struct {
    int8_t (*Receive)(uint8_t *Buf, uint32_t *Len);
} USBD_CDC_ItfTypeDef;

extern const USBD_ClassTypeDef USBD_CDC;
USBD_StatusTypeDef USBD_CDC_RegisterInterface(USBD_HandleTypeDef *pdev, const USBD_CDC_ItfTypeDef *fops);

#endif
