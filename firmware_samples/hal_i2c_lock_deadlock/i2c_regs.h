/* STM32F7 I2C register block and bits (RM0385 section 30.7). */
#ifndef I2C_REGS_H
#define I2C_REGS_H
#include <stdint.h>

typedef struct {
    volatile uint32_t CR1;      /* 0x00 */
    volatile uint32_t CR2;      /* 0x04 */
    volatile uint32_t OAR1;     /* 0x08 */
    volatile uint32_t OAR2;     /* 0x0C */
    volatile uint32_t TIMINGR;  /* 0x10 */
    volatile uint32_t TIMEOUTR; /* 0x14 */
    volatile uint32_t ISR;      /* 0x18 */
    volatile uint32_t ICR;      /* 0x1C */
    volatile uint32_t PECR;     /* 0x20 */
    volatile uint32_t RXDR;     /* 0x24 */
    volatile uint32_t TXDR;     /* 0x28 */
} I2C_TypeDef;

#define I2C_CR1_PE      (1u << 0)
#define I2C_CR1_TXIE    (1u << 1)
#define I2C_CR1_RXIE    (1u << 2)
#define I2C_CR1_ADDRIE  (1u << 3)
#define I2C_CR1_NACKIE  (1u << 4)
#define I2C_CR1_STOPIE  (1u << 5)
#define I2C_CR1_TCIE    (1u << 6)
#define I2C_CR1_ERRIE   (1u << 7)

#define I2C_CR2_SADD    0x3FFu
#define I2C_CR2_RD_WRN  (1u << 10)
#define I2C_CR2_START   (1u << 13)
#define I2C_CR2_STOP    (1u << 14)
#define I2C_CR2_NBYTES_Pos 16u
#define I2C_CR2_NBYTES  (0xFFu << I2C_CR2_NBYTES_Pos)
#define I2C_CR2_RELOAD  (1u << 24)
#define I2C_CR2_AUTOEND (1u << 25)

#define I2C_ISR_TXE     (1u << 0)
#define I2C_ISR_TXIS    (1u << 1)
#define I2C_ISR_RXNE    (1u << 2)
#define I2C_ISR_ADDR    (1u << 3)
#define I2C_ISR_NACKF   (1u << 4)
#define I2C_ISR_STOPF   (1u << 5)
#define I2C_ISR_TC      (1u << 6)
#define I2C_ISR_TCR     (1u << 7)
#define I2C_ISR_BERR    (1u << 8)
#define I2C_ISR_ARLO    (1u << 9)
#define I2C_ISR_OVR     (1u << 10)
#define I2C_ISR_BUSY    (1u << 15)

#define I2C_ICR_NACKCF  (1u << 4)
#define I2C_ICR_STOPCF  (1u << 5)
#define I2C_ICR_BERRCF  (1u << 8)
#define I2C_ICR_ARLOCF  (1u << 9)
#define I2C_ICR_OVRCF   (1u << 10)
#endif
