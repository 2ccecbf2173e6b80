/* HAL handle locks used the way ST's HAL uses them, from main and from ISRs, never contended:
 *  - htim3: main configures and starts TIM3 under the handle lock, released before the update
 *    interrupt is enabled; the TIM3 callback stops the timer from the ISR (the lock is free);
 *  - hdma: a transfer holds the stream's lock from HAL_DMA_Start_IT to its completion interrupt,
 *    which releases it and then calls the callback; the callback starts the next chunk from the
 *    ISR, main starts the first one and waits for the last. */
#include <stdbool.h>
#include "board.h"
#include "hal_dma.h"
#include "hal_tim.h"
#include "uart.h"

#define SAMPLE "hal_clean: "
#define TIM3_PRIO 6
#define DMA_PRIO 8
#define TIM3_FIRINGS 3
#define TIM_PSC_10KHZ 8399
#define TIM3_ARR 49
#define CHUNKS 4
#define CHUNK_WORDS 8

static TIM_HandleTypeDef htim3;
static DMA_HandleTypeDef hdma_memtomem;
static uint32_t source[CHUNKS * CHUNK_WORDS], destination[CHUNKS * CHUNK_WORDS];
static volatile unsigned tim3_firings, chunks_done, busy_answers;

void SysTick_Handler(void)
{
    uwTick++;
}

static void tim3_period_elapsed(TIM_HandleTypeDef *htim)
{
    if (++tim3_firings == TIM3_FIRINGS && HAL_TIM_Base_Stop_IT(htim) == HAL_BUSY)
        busy_answers++;
}

void TIM3_IRQHandler(void)
{
    HAL_TIM_IRQHandler(&htim3);
}

static HAL_StatusTypeDef start_chunk(unsigned chunk)
{
    return HAL_DMA_Start_IT(&hdma_memtomem, source + chunk * CHUNK_WORDS, destination + chunk * CHUNK_WORDS, CHUNK_WORDS);
}

static void dma_transfer_complete(DMA_HandleTypeDef *hdma)
{
    (void)hdma;
    if (++chunks_done < CHUNKS && start_chunk(chunks_done) == HAL_BUSY)
        busy_answers++;
}

void DMA2_Stream0_IRQHandler(void)
{
    HAL_DMA_IRQHandler(&hdma_memtomem);
}

static bool copied_whole(void)
{
    for (unsigned i = 0; i < CHUNKS * CHUNK_WORDS; i++) {
        if (destination[i] != source[i])
            return false;
    }
    return true;
}

int main(void)
{
    uart_init();
    uart_print(SAMPLE "boot\r\n");
    systick_start(168000u, 15); /* HAL_GetTick's 1 ms tick */
    for (unsigned i = 0; i < CHUNKS * CHUNK_WORDS; i++)
        source[i] = 0x1000u + i;

    htim3 = (TIM_HandleTypeDef){.Instance = TIM3_BASE, .Prescaler = TIM_PSC_10KHZ, .Period = TIM3_ARR,
                                .PeriodElapsedCallback = tim3_period_elapsed};
    hdma_memtomem = (DMA_HandleTypeDef){.IRQn = DMA2_Stream0_IRQn, .XferCpltCallback = dma_transfer_complete};
    nvic_set_priority(TIM3_IRQn, TIM3_PRIO);
    nvic_set_priority(DMA2_Stream0_IRQn, DMA_PRIO);
    nvic_enable_irq(TIM3_IRQn);
    HAL_TIM_Base_Init(&htim3);
    HAL_DMA_Init(&hdma_memtomem);

    HAL_TIM_Base_Start_IT(&htim3);
    if (start_chunk(0) == HAL_BUSY)
        busy_answers++;
    while (chunks_done < CHUNKS) {
        uint32_t start = HAL_GetTick();
        while (HAL_GetTick() - start < 2u) {
        }
        DMA_TransferComplete(&hdma_memtomem); /* the stream finishes its chunk */
    }
    while (tim3_firings < TIM3_FIRINGS) {
    }
    uart_print_hex(SAMPLE "TIM3 firings = ", tim3_firings);
    uart_print_hex(SAMPLE "chunks copied = ", chunks_done);
    uart_print(copied_whole() && busy_answers == 0 ? SAMPLE "done\r\n" : SAMPLE "copy or lock FAILED\r\n");
    SYST_CSR = 0;
    sample_done();
}
