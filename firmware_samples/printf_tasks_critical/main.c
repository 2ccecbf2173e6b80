/* Seed 003: two equal-priority tasks print with newlib's printf under time slicing. printf is not
 * reentrant (one shared stdout buffer, no lock): a long line outlasts a time slice, so the other
 * task enters printf while the first is still inside it and the lines come out mangled. Around
 * them, the FreeRTOS port's rules are broken twice: TIM3, more urgent than the syscall ceiling,
 * calls a FromISR API, and TIM4 calls the task-level vPortEnterCritical from an ISR. */
#include <stdbool.h>
#include <stdio.h>
#include "board.h"
#include "rtos.h"
#include "uart.h"

#define SAMPLE "printf_tasks_critical: "
#define STACK_WORDS 512
#define LINES_PER_TASK 3
#define CHARS_PER_TICK 11  /* what a 115200 baud 8N1 line sends in a 1 ms tick */
#define TIM3_PRIO 2        /* IPR 0x20: above configMAX_SYSCALL_INTERRUPT_PRIORITY (0x50) */
#define TIM4_PRIO 7        /* IPR 0x70: below the ceiling, masked by critical sections */
#define TIMER_FIRINGS 4
#define TIM_PSC_10KHZ 8399 /* 10 kHz from a board's 84 MHz timer clock; QEMU's model fires every 10-20 ticks */
#define TIM3_ARR 49        /* 5 ms on a board */
#define TIM4_ARR 69        /* 7 ms on a board */

typedef struct {
    TCB_t tcb;
    uint32_t stack[STACK_WORDS] __attribute__((aligned(8)));
    volatile bool in_write; /* inside printf, sending its line through _write */
    unsigned samples;
} AppTask;

static AppTask led_task, lcd_task;
static Queue_t timer_queue_storage;
static uint32_t timer_queue_items[8];
static QueueHandle_t xTimerQueue;
static volatile unsigned tim3_firings, tim4_firings, tim4_critical_sections;
static volatile unsigned printf_reentries;
static const char *reentered_by, *reentered_while;
static unsigned tasks_finished;

void TIM3_IRQHandler(void)
{
    TIM_SR(TIM3_BASE) = 0;
    uint32_t stamp = xTaskGetTickCountFromISR();
    BaseType_t woken = pdFALSE;
    xQueueGenericSendFromISR(xTimerQueue, &stamp, &woken, queueSEND_TO_BACK);
    if (++tim3_firings == TIMER_FIRINGS)
        TIM_CR1(TIM3_BASE) = 0;
    portYIELD_FROM_ISR(woken);
}

void TIM4_IRQHandler(void)
{
    TIM_SR(TIM4_BASE) = 0;
    vPortEnterCritical(); /* task-level API from an ISR: FreeRTOS asserts on this */
    tim4_critical_sections++;
    vPortExitCritical();
    if (++tim4_firings == TIMER_FIRINGS)
        TIM_CR1(TIM4_BASE) = 0;
}

static void wait_for_next_tick(void)
{
    TickType_t now = xTaskGetTickCount();
    while (xTaskGetTickCount() == now) {
    }
}

/* newlib's output hook. QEMU's USART1 sends at once; once the tick runs, pace it like the real
 * wire so a long line takes several ticks, that is several time slices, as on a board. */
int _write(int fd, const char *buf, int len)
{
    (void)fd;
    if (xTaskGetSchedulerState() != taskSCHEDULER_RUNNING) {
        for (int i = 0; i < len; i++)
            uart_putc(buf[i]);
        return len;
    }
    AppTask *self = (AppTask *)pxCurrentTCB; /* the TCB is an AppTask's first member */
    self->in_write = true;
    for (int i = 0; i < len; i++) {
        if (i > 0 && i % CHARS_PER_TICK == 0)
            wait_for_next_tick();
        uart_putc(buf[i]);
    }
    self->in_write = false;
    return len;
}

static AppTask *other_task(AppTask *self)
{
    return self == &led_task ? &lcd_task : &led_task;
}

/* Called right before printf: notes when the other task is inside printf (in its _write). */
static void note_printf_reentry(AppTask *self)
{
    taskENTER_CRITICAL();
    if (other_task(self)->in_write && printf_reentries++ == 0) {
        reentered_by = self->tcb.pcTaskName;
        reentered_while = other_task(self)->tcb.pcTaskName;
    }
    taskEXIT_CRITICAL();
}

static void start_timers(void)
{
    nvic_set_priority(TIM3_IRQn, TIM3_PRIO);
    nvic_set_priority(TIM4_IRQn, TIM4_PRIO);
    nvic_enable_irq(TIM3_IRQn);
    nvic_enable_irq(TIM4_IRQn);
    tim_start_periodic(TIM3_BASE, TIM_PSC_10KHZ, TIM3_ARR);
    tim_start_periodic(TIM4_BASE, TIM_PSC_10KHZ, TIM4_ARR);
}

/* Runs alone: the other task is suspended. */
static void report_and_stop(void)
{
    printf(SAMPLE "TIM3 sent %u samples from ISR priority %d, ceiling 0x%02lx\r\n", tim3_firings, TIM3_PRIO,
           (unsigned long)ulMaxSyscallInterruptPriority);
    printf(SAMPLE "TIM4 entered %u task-level critical sections from its ISR\r\n", tim4_critical_sections);
    if (printf_reentries > 0)
        printf(SAMPLE "BUG printf re-entered %u times: %s entered it while %s was inside\r\n", printf_reentries,
               reentered_by, reentered_while);
    printf(SAMPLE "done\r\n");
    SYST_CSR = 0;
    TIM_CR1(TIM3_BASE) = 0;
    TIM_CR1(TIM4_BASE) = 0;
    sample_done();
}

static void print_task(void *pvParameters)
{
    AppTask *self = pvParameters;
    for (int line = 1; line <= LINES_PER_TASK; line++) {
        uint32_t stamp;
        while (xQueueReceive(xTimerQueue, &stamp, 0) == pdPASS)
            self->samples++;
        note_printf_reentry(self);
        printf("%s running: line %d of %d at tick %lu, %u TIM3 samples so far, a line longer than a slice\r\n",
               self->tcb.pcTaskName, line, LINES_PER_TASK, (unsigned long)xTaskGetTickCount(), self->samples);
        vTaskDelay(1);
    }
    taskENTER_CRITICAL();
    bool last = ++tasks_finished == 2;
    taskEXIT_CRITICAL();
    if (!last)
        vTaskSuspend(NULL);
    report_and_stop();
}

static void led_func(void *pvParameters)
{
    start_timers();
    print_task(pvParameters);
}

/* Starts once led_task is sending its first line, so this task's printf lands inside led_task's. */
static void lcd_func(void *pvParameters)
{
    while (!led_task.in_write)
        vTaskDelay(1);
    print_task(pvParameters);
}

int main(void)
{
    uart_init();
    printf(SAMPLE "boot\r\n"); /* also sets up newlib's stdout before any task runs */
    xTimerQueue = xQueueCreateStatic(8, sizeof(uint32_t), (uint8_t *)timer_queue_items, &timer_queue_storage);
    xTaskCreateStatic(led_func, "led_task", led_task.stack, STACK_WORDS, &led_task, &led_task.tcb);
    xTaskCreateStatic(lcd_func, "lcd_task", lcd_task.stack, STACK_WORDS, &lcd_task, &lcd_task.tcb);
    vTaskStartScheduler();
    return 0;
}
