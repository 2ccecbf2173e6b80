/* Reset handler and vector table for STM32F405 / STM32F746, written for these samples. */
#include <stdint.h>
#include <string.h>
#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void __libc_init_array(void);
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);

#define WEAK_ALIAS __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_ALIAS;
void HardFault_Handler(void) WEAK_ALIAS;
void MemManage_Handler(void) WEAK_ALIAS;
void BusFault_Handler(void) WEAK_ALIAS;
void UsageFault_Handler(void) WEAK_ALIAS;
void SVC_Handler(void) WEAK_ALIAS;
void DebugMon_Handler(void) WEAK_ALIAS;
void PendSV_Handler(void) WEAK_ALIAS;
void SysTick_Handler(void) WEAK_ALIAS;
#define X(name, n) void name##_IRQHandler(void) WEAK_ALIAS;
DEVICE_IRQS(X)
#undef X

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used))
const vector_t g_pfnVectors[16 + DEVICE_IRQ_COUNT] = {
    (vector_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
#define X(name, n) [16 + (n)] = name##_IRQHandler,
    DEVICE_IRQS(X)
#undef X
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    SCB_CPACR |= 0xFu << 20; /* FPU on: newlib is built for the hard-float ABI */
    __DSB();
    __ISB();
    SCB_VTOR = (uint32_t)g_pfnVectors;
    __libc_init_array();
    main();
    sample_done();
}

void Default_Handler(void)
{
    for (;;) {
    }
}

volatile uint32_t uwTick;

__attribute__((weak)) uint32_t HAL_GetTick(void) { return uwTick; }

void systick_start(uint32_t reload, uint32_t prio)
{
    SCB_SHPR[15 - 4] = NVIC_PRIO(prio);
    SYST_RVR = reload - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7; /* core clock, interrupt, enable */
}

__attribute__((noinline)) void sample_done(void)
{
    for (;;) {
        __asm volatile("wfi");
    }
}
