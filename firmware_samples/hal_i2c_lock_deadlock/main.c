/* Seed 004: a task holds hi2c1.Lock while it polls TXIS for up to 25 ticks; I2C1_EV fires, its
 * XferISR finds the lock taken, returns HAL_BUSY without clearing TXIS, and the level-sensitive
 * line re-enters the handler back to back: thread mode never runs again (storm 1). Then a bus
 * error's handler sets XferISR to NULL, the task goes on as if nothing happened, and the next
 * event has no handler at all (storm 2). Last, the seed author's workaround: the ISR unlocks the
 * handle the task still holds. */
#include <stdbool.h>
#include "board.h"
#include "hal_i2c.h"
#include "i2c1_model.h"
#include "uart.h"

#define SAMPLE "hal_i2c_lock_deadlock: "
#define SYSTICK_RELOAD 168000u /* 1 ms at QEMU's 168 MHz core clock */
#define SYSTICK_PRIO 1u
#define I2C1_PRIO 3u
/* Bound of a storm: the peripheral is reset (PE off/on), standing in for the by-hand recovery
 * of the seed and keeping the sample finite, after STORM_LIMIT back-to-back entries that lasted
 * STORM_TICKS ms (longer than a tick-scale glitch, as the seed's storm lasted until the task's
 * timeout), or after STORM_MAX entries: a debugger's halts hold QEMU's clock, so a halting
 * capture would otherwise wait for the ticks through thousands of entries. */
#define STORM_LIMIT 150u
#define STORM_TICKS 15u
#define STORM_MAX 20000u
#define EEPROM_ADDRESS (0x50u << 1)

I2C_HandleTypeDef hi2c1 = { .Instance = I2C1 };

static volatile bool force_unlock_in_isr;
static volatile bool rx_complete;
static volatile uint32_t ev_entries;
static volatile uint32_t back_to_back_entries;
static volatile uint32_t longest_storm;
static volatile uint32_t storm_start_tick;
static volatile uint32_t isr_force_unlocks;
static volatile uint32_t thread_loops_at_last_entry;
static uint8_t rx_buffer[4];

void SysTick_Handler(void)
{
    uwTick++;
    i2c1_model_tick();
}

/* An entry is back to back when thread mode made no progress since the previous one. */
static void count_storm_entry(void)
{
    ev_entries++;
    if (thread_wait_loops == thread_loops_at_last_entry) {
        back_to_back_entries++;
    } else {
        back_to_back_entries = 1;
        thread_loops_at_last_entry = thread_wait_loops;
    }
    if (back_to_back_entries == 1)
        storm_start_tick = uwTick;
    if (back_to_back_entries > longest_storm)
        longest_storm = back_to_back_entries;
}

void I2C1_EV_IRQHandler(void)
{
    if (force_unlock_in_isr && hi2c1.Lock == HAL_LOCKED) {
        __HAL_UNLOCK(&hi2c1); /* the workaround: unlock what the task locked */
        isr_force_unlocks++;
    }
    HAL_I2C_EV_IRQHandler(&hi2c1);
    count_storm_entry();
    if (back_to_back_entries >= STORM_MAX ||
        (back_to_back_entries >= STORM_LIMIT && uwTick - storm_start_tick >= STORM_TICKS))
        i2c1_model_software_reset();
    i2c1_model_update_irq();
}

void I2C1_ER_IRQHandler(void)
{
    HAL_I2C_ER_IRQHandler(&hi2c1);
    i2c1_model_update_irq();
}

void HAL_I2C_MemRxCpltCallback(I2C_HandleTypeDef *hi2c)
{
    (void)hi2c;
    rx_complete = true;
}

void HAL_I2C_ErrorCallback(I2C_HandleTypeDef *hi2c)
{
    (void)hi2c;
}

static void print_dec(uint32_t value)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    while (n)
        uart_putc(digits[--n]);
}

static void print_count(const char *before, uint32_t value, const char *after)
{
    uart_print(before);
    print_dec(value);
    uart_print(after);
}

static const char *status_name(HAL_StatusTypeDef status)
{
    static const char *const names[] = { "HAL_OK", "HAL_ERROR", "HAL_BUSY", "HAL_TIMEOUT" };
    return names[status];
}

/* The application enables the event interrupts at init, so TXIS raises I2C1_EV while the task
 * is still polling for it inside the locked section. */
static void enable_i2c1_event_interrupts(void)
{
    I2C1->CR1 |= I2C_XFER_TX_IT | I2C_XFER_RX_IT;
}

static HAL_StatusTypeDef read_eeprom(void)
{
    longest_storm = 0;
    ev_entries = 0;
    back_to_back_entries = 0;
    return HAL_I2C_Mem_Read_IT(&hi2c1, EEPROM_ADDRESS, 0x10, I2C_MEMADD_SIZE_8BIT, rx_buffer, sizeof rx_buffer);
}

static void wait_for_completion(void)
{
    uint32_t start = HAL_GetTick();
    while (!rx_complete && HAL_GetTick() - start <= I2C_TIMEOUT_FLAG)
        thread_wait_loops++;
}

static void storm_on_lock_contention(void)
{
    enable_i2c1_event_interrupts();
    HAL_StatusTypeDef status = read_eeprom();
    uart_print(SAMPLE "transfer 1 returned ");
    uart_print(status_name(status));
    print_count(", I2C1_EV entered ", ev_entries, " times, ");
    print_count("longest back-to-back run ", longest_storm, "\r\n");
    if (status == HAL_TIMEOUT && longest_storm >= STORM_LIMIT)
        print_count(SAMPLE "BUG I2C1_EV re-entered ", longest_storm,
                    " times back to back while the task held hi2c1.Lock\r\n");
}

static void storm_on_null_xfer_isr(void)
{
    i2c1_model_inject_bus_error();
    rx_complete = false;
    HAL_StatusTypeDef status = read_eeprom();
    wait_for_completion();
    uart_print(SAMPLE "transfer 2 returned ");
    uart_print(status_name(status));
    uart_print(hi2c1.XferISR ? ", XferISR set\r\n" : ", XferISR NULL after the bus error\r\n");
    uart_print(rx_complete ? SAMPLE "transfer 2 completed\r\n" : SAMPLE "transfer 2 never completed, ");
    print_count("I2C1_EV with no XferISR: longest back-to-back run ", longest_storm, "\r\n");
}

static void workaround_force_unlock(void)
{
    force_unlock_in_isr = true;
    enable_i2c1_event_interrupts();
    HAL_StatusTypeDef status = read_eeprom();
    uart_print(SAMPLE "transfer 3 with the ISR force-unlock returned ");
    uart_print(status_name(status));
    print_count(", longest back-to-back run ", longest_storm, ", ");
    print_count("ISR unlocked the task's lock ", isr_force_unlocks, " times\r\n");
}

int main(void)
{
    uart_init();
    uart_print(SAMPLE "boot\r\n");
    HAL_I2C_Init(&hi2c1);
    nvic_set_priority(I2C1_EV_IRQn, I2C1_PRIO);
    nvic_set_priority(I2C1_ER_IRQn, I2C1_PRIO);
    nvic_enable_irq(I2C1_EV_IRQn);
    nvic_enable_irq(I2C1_ER_IRQn);
    systick_start(SYSTICK_RELOAD, SYSTICK_PRIO);

    storm_on_lock_contention();
    storm_on_null_xfer_isr();
    workaround_force_unlock();

    SYST_CSR = 0;
    uart_print(SAMPLE "done\r\n");
    return 0;
}
