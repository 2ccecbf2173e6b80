/* Correct code on a kernel that behaves like FreeRTOS (rtos.h): irqmon must report nothing.
 *  - producer (priority 3) allocates through pvPortMalloc (heap_3: scheduler suspended around
 *    malloc), updates a total under a mutex (xSemaphoreTake/xSemaphoreGive: queue calls on a
 *    queue whose pcHead is NULL) and queues work;
 *  - two "worker" tasks (priority 2) run one function under one name; each blocks in xQueueReceive, then holds
 *    the mutex across a delay longer than the producer's pause, so the producer blocks on it and
 *    is woken by the give (at any speed: with or without a debugger's halts);
 *  - TIM2 (priority 6, below the syscall ceiling 5) sends with xQueueSendFromISR to the monitor
 *    task (priority 4), which blocks on its queue and is switched in by portYIELD_FROM_ISR. */
#include <stdbool.h>
#include "board.h"
#include "rtos.h"
#include "uart.h"

#define SAMPLE "rtos_clean: "
#define STACK_WORDS 512
#define ROUNDS 6
#define BLOCK_SIZE 48
#define TIM2_PRIO 6
#define TIM2_FIRINGS 4
#define TIM_PSC_10KHZ 8399 /* QEMU's model fires every 10-20 ticks */
#define TIM2_ARR 49
#define WORK_WAIT_TICKS 20
#define PRODUCER_PAUSE_TICKS 2
#define WORKER_HOLD_TICKS (PRODUCER_PAUSE_TICKS + 1)

typedef struct {
    TCB_t tcb;
    uint32_t stack[STACK_WORDS] __attribute__((aligned(8)));
} TaskMemory;

static TaskMemory producer_memory, worker_a_memory, worker_b_memory, monitor_memory;
static Queue_t work_queue_storage, tick_queue_storage, total_mutex_storage;
static uint32_t work_items[4], tick_items[4];
static QueueHandle_t work_queue, tick_queue;
static SemaphoreHandle_t total_mutex;
static volatile unsigned total, processed, tim2_firings, ticks_seen;
static volatile bool allocation_failed;

void TIM2_IRQHandler(void)
{
    TIM_SR(TIM2_BASE) = 0;
    uint32_t firing = ++tim2_firings;
    if (firing == TIM2_FIRINGS)
        TIM_CR1(TIM2_BASE) = 0;
    BaseType_t woken = pdFALSE;
    xQueueSendFromISR(tick_queue, &firing, &woken);
    portYIELD_FROM_ISR(woken);
}

static void add_to_total(unsigned amount, TickType_t hold_ticks)
{
    xSemaphoreTake(total_mutex, portMAX_DELAY);
    total += amount;
    if (hold_ticks > 0)
        vTaskDelay(hold_ticks); /* a higher-priority task blocks on the mutex meanwhile */
    xSemaphoreGive(total_mutex);
}

static void report_and_stop(void)
{
    uart_print_hex(SAMPLE "total = ", total);
    uart_print_hex(SAMPLE "TIM2 ticks seen = ", ticks_seen);
    uart_print(allocation_failed ? SAMPLE "allocation failed\r\n" : SAMPLE "done\r\n");
    SYST_CSR = 0;
    TIM_CR1(TIM2_BASE) = 0;
    sample_done();
}

static void producer_task(void *pvParameters)
{
    (void)pvParameters;
    for (uint32_t round = 1; round <= ROUNDS; round++) {
        uint8_t *block = pvPortMalloc(BLOCK_SIZE);
        allocation_failed |= block == NULL;
        add_to_total(round, 0);
        xQueueSend(work_queue, &round, portMAX_DELAY);
        vPortFree(block);
        vTaskDelay(PRODUCER_PAUSE_TICKS);
    }
    while (processed < ROUNDS || ticks_seen < TIM2_FIRINGS)
        vTaskDelay(5);
    report_and_stop();
}

/* Two tasks of one function and one name. */
static void worker_task(void *pvParameters)
{
    (void)pvParameters;
    for (;;) {
        uint32_t round;
        if (xQueueReceive(work_queue, &round, WORK_WAIT_TICKS) != pdPASS)
            continue;
        add_to_total(round, WORKER_HOLD_TICKS);
        taskENTER_CRITICAL();
        processed++;
        taskEXIT_CRITICAL();
    }
}

static void monitor_task(void *pvParameters)
{
    (void)pvParameters;
    nvic_set_priority(TIM2_IRQn, TIM2_PRIO);
    nvic_enable_irq(TIM2_IRQn);
    tim_start_periodic(TIM2_BASE, TIM_PSC_10KHZ, TIM2_ARR);
    for (;;) {
        uint32_t firing;
        if (xQueueReceive(tick_queue, &firing, portMAX_DELAY) == pdPASS)
            ticks_seen++;
    }
}

int main(void)
{
    uart_init();
    uart_print(SAMPLE "boot\r\n");
    work_queue = xQueueGenericCreateStatic(4, sizeof(uint32_t), (uint8_t *)work_items, &work_queue_storage);
    tick_queue = xQueueGenericCreateStatic(4, sizeof(uint32_t), (uint8_t *)tick_items, &tick_queue_storage);
    total_mutex = xQueueCreateMutexStatic(&total_mutex_storage);
    /* One function, one name: FreeRTOS does not ask task names to be unique. */
    xTaskCreateStatic(worker_task, "worker", STACK_WORDS, NULL, 2, worker_a_memory.stack, &worker_a_memory.tcb);
    xTaskCreateStatic(worker_task, "worker", STACK_WORDS, NULL, 2, worker_b_memory.stack, &worker_b_memory.tcb);
    xTaskCreateStatic(producer_task, "producer", STACK_WORDS, NULL, 3, producer_memory.stack, &producer_memory.tcb);
    xTaskCreateStatic(monitor_task, "monitor", STACK_WORDS, NULL, 4, monitor_memory.stack, &monitor_memory.tcb);
    vTaskStartScheduler();
    return 0;
}
