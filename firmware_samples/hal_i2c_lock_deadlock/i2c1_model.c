#include "i2c1_model.h"
#include "board.h"

#define TXDR_EMPTY 0x100u /* above the 8 data bits: tells a TXDR write apart */
#define EV_FLAGS (I2C_ISR_TXIS | I2C_ISR_RXNE | I2C_ISR_ADDR | I2C_ISR_NACKF | I2C_ISR_STOPF | I2C_ISR_TC | I2C_ISR_TCR)
#define ER_FLAGS (I2C_ISR_BERR | I2C_ISR_ARLO | I2C_ISR_OVR)

enum bus_phase { BUS_IDLE, BUS_ADDRESS, BUS_WRITE, BUS_READ };

I2C_TypeDef I2C1_Regs = { .ISR = I2C_ISR_TXE, .TXDR = TXDR_EMPTY };

static enum bus_phase phase;
static uint32_t bytes_left;
static bool byte_in_shift_register;
static bool bus_error_pending;

static uint32_t enabled_event_flags(uint32_t cr1)
{
    uint32_t enabled = 0;
    if (cr1 & I2C_CR1_TXIE) enabled |= I2C_ISR_TXIS;
    if (cr1 & I2C_CR1_RXIE) enabled |= I2C_ISR_RXNE;
    if (cr1 & I2C_CR1_ADDRIE) enabled |= I2C_ISR_ADDR;
    if (cr1 & I2C_CR1_NACKIE) enabled |= I2C_ISR_NACKF;
    if (cr1 & I2C_CR1_STOPIE) enabled |= I2C_ISR_STOPF;
    if (cr1 & I2C_CR1_TCIE) enabled |= I2C_ISR_TC | I2C_ISR_TCR;
    return enabled;
}

static void apply_register_writes(void)
{
    if (I2C1->TXDR != TXDR_EMPTY) {
        I2C1->TXDR = TXDR_EMPTY;
        I2C1->ISR &= ~I2C_ISR_TXIS;
        byte_in_shift_register = true;
    }
    if (I2C1->ICR) {
        I2C1->ISR &= ~I2C1->ICR;
        I2C1->ICR = 0;
    }
    if (I2C1->CR2 & I2C_CR2_START) {
        I2C1->CR2 &= ~I2C_CR2_START;
        I2C1->ISR = (I2C1->ISR & ~(I2C_ISR_TC | I2C_ISR_TXIS)) | I2C_ISR_BUSY;
        bytes_left = (I2C1->CR2 & I2C_CR2_NBYTES) >> I2C_CR2_NBYTES_Pos;
        phase = BUS_ADDRESS;
    }
}

void i2c1_model_update_irq(void)
{
    apply_register_writes();
    if (!(I2C1->CR1 & I2C_CR1_PE))
        return;
    if (I2C1->ISR & enabled_event_flags(I2C1->CR1))
        nvic_set_pending(I2C1_EV_IRQn);
    if ((I2C1->ISR & ER_FLAGS) && (I2C1->CR1 & I2C_CR1_ERRIE))
        nvic_set_pending(I2C1_ER_IRQn);
}

static void advance_bus(void)
{
    switch (phase) {
    case BUS_IDLE:
        break;
    case BUS_ADDRESS:
        if (bus_error_pending) {
            bus_error_pending = false;
            I2C1->ISR |= I2C_ISR_BERR;
        } else if (I2C1->CR2 & I2C_CR2_RD_WRN) {
            phase = BUS_READ;
        } else {
            I2C1->ISR |= I2C_ISR_TXIS;
            phase = BUS_WRITE;
        }
        break;
    case BUS_WRITE:
        if (byte_in_shift_register) {
            byte_in_shift_register = false;
            if (--bytes_left)
                I2C1->ISR |= I2C_ISR_TXIS;
            else
                I2C1->ISR |= I2C_ISR_TC;
        }
        break;
    case BUS_READ:
        if (bytes_left && !(I2C1->ISR & I2C_ISR_RXNE)) {
            I2C1->RXDR = 0xA0u + bytes_left; /* the slave's data */
            I2C1->ISR |= I2C_ISR_RXNE;
            bytes_left--;
        }
        break;
    }
}

void i2c1_model_tick(void)
{
    apply_register_writes();
    if (!(I2C1->ISR & ER_FLAGS)) /* the bus waits until software has cleared an error */
        advance_bus();
    i2c1_model_update_irq();
}

void i2c1_model_software_reset(void)
{
    I2C1->CR1 &= ~I2C_CR1_PE;
    I2C1->CR2 = 0;
    I2C1->ISR = I2C_ISR_TXE;
    I2C1->ICR = 0;
    I2C1->TXDR = TXDR_EMPTY;
    phase = BUS_IDLE;
    byte_in_shift_register = false;
    nvic_clear_pending(I2C1_EV_IRQn);
    nvic_clear_pending(I2C1_ER_IRQn);
    I2C1->CR1 |= I2C_CR1_PE;
}

void i2c1_model_inject_bus_error(void)
{
    bus_error_pending = true;
}
