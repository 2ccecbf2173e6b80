/* QEMU has no I2C on netduinoplus2: I2C1 is a RAM register block, and this model plays the bus and
 * the peripheral's side effects on it, driven by SysTick and by the end of the I2C1 handlers. */
#ifndef I2C1_MODEL_H
#define I2C1_MODEL_H
#include <stdbool.h>
#include "i2c_regs.h"

extern I2C_TypeDef I2C1_Regs;
#define I2C1 (&I2C1_Regs)

/* One bus step a tick: address phase, byte shifted, data byte received. */
void i2c1_model_tick(void);
/* Hardware side effects of the last register writes (TXDR write clears TXIS, ICR clears flags),
 * then the level-sensitive I2C1_EV / I2C1_ER lines: pending while a flag is set and enabled. */
void i2c1_model_update_irq(void);
/* PE cleared then set (RM0385 "software reset"): flags back to reset values, bus idle. */
void i2c1_model_software_reset(void);
/* Make the next address phase end in a bus error (BERR). */
void i2c1_model_inject_bus_error(void);
#endif
