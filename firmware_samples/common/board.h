/* Registers and IRQ numbers the samples use, from RM0090 (STM32F405) and RM0385 (STM32F746):
 * the addresses and numbers below are the same on both chips. */
#ifndef BOARD_H
#define BOARD_H
#include <stdint.h>
#include "vectors.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* IRQ numbers: WWDG_IRQn = 0 ... */
#define X(name, n) name##_IRQn = n,
typedef enum { DEVICE_IRQS(X) } IRQn_Type;
#undef X

/* Core peripherals (ARMv7-M). */
#define SYSTICK_BASE   0xE000E010u
#define SYST_CSR       REG32(SYSTICK_BASE + 0x0)
#define SYST_RVR       REG32(SYSTICK_BASE + 0x4)
#define SYST_CVR       REG32(SYSTICK_BASE + 0x8)
#define NVIC_ISER(n)   REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n)   REG32(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n)   REG32(0xE000E200u + 4u * (n))
#define NVIC_ICPR(n)   REG32(0xE000E280u + 4u * (n))
#define NVIC_IPR       ((volatile uint8_t *)0xE000E400u)
#define NVIC_STIR      REG32(0xE000EF00u)
#define SCB_ICSR       REG32(0xE000ED04u)
#define SCB_VTOR       REG32(0xE000ED08u)
#define SCB_AIRCR      REG32(0xE000ED0Cu)
#define SCB_SHPR       ((volatile uint8_t *)0xE000ED18u) /* SHPR[exception - 4] */
#define SCB_CPACR      REG32(0xE000ED88u)
#define ICSR_PENDSVSET (1u << 28)
#define ICSR_VECTACTIVE_MASK 0x1FFu

#define NVIC_PRIO_BITS 4u /* both chips implement the top 4 bits */
#define NVIC_PRIO(p)   ((uint8_t)((p) << (8u - NVIC_PRIO_BITS)))

/* EXTI (modelled by QEMU). */
#define EXTI_BASE  0x40013C00u
#define EXTI_IMR   REG32(EXTI_BASE + 0x00)
#define EXTI_EMR   REG32(EXTI_BASE + 0x04)
#define EXTI_RTSR  REG32(EXTI_BASE + 0x08)
#define EXTI_FTSR  REG32(EXTI_BASE + 0x0C)
#define EXTI_SWIER REG32(EXTI_BASE + 0x10)
#define EXTI_PR    REG32(EXTI_BASE + 0x14)

/* USART1 (modelled by QEMU; serial0 on netduinoplus2). */
#define USART1_BASE 0x40011000u
#define USART_SR(b)  REG32((b) + 0x00)
#define USART_DR(b)  REG32((b) + 0x04)
#define USART_BRR(b) REG32((b) + 0x08)
#define USART_CR1(b) REG32((b) + 0x0C)
#define USART_SR_TXE   (1u << 7)
#define USART_SR_TC    (1u << 6)
#define USART_SR_RXNE  (1u << 5)
#define USART_CR1_UE   (1u << 13)
#define USART_CR1_TXEIE (1u << 7)
#define USART_CR1_TCIE (1u << 6)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_TE   (1u << 3)
#define USART_CR1_RE   (1u << 2)

/* General-purpose timers TIM2..TIM5 (modelled by QEMU). */
#define TIM2_BASE 0x40000000u
#define TIM3_BASE 0x40000400u
#define TIM4_BASE 0x40000800u
#define TIM5_BASE 0x40000C00u
#define TIM_CR1(b)  REG32((b) + 0x00)
#define TIM_DIER(b) REG32((b) + 0x0C)
#define TIM_SR(b)   REG32((b) + 0x10)
#define TIM_EGR(b)  REG32((b) + 0x14)
#define TIM_CNT(b)  REG32((b) + 0x24)
#define TIM_PSC(b)  REG32((b) + 0x28)
#define TIM_ARR(b)  REG32((b) + 0x2C)
#define TIM_CR1_CEN  (1u << 0)
#define TIM_DIER_UIE (1u << 0)
#define TIM_SR_UIF   (1u << 0)
#define TIM_EGR_UG   (1u << 0)

/* Start a timer's update interrupt every (psc+1)*(arr+1) timer clocks.
 * QEMU's TIM2-5 model counts from the time CNT was last written (an ARR smaller than the virtual
 * time since reset never fires otherwise), arms its update alarm on writes to PSC, ARR, CNT and
 * EGR, and drops that alarm for good if it goes off while CEN or UIE is clear: with its 1 GHz
 * timer clock a host scheduling hiccup between the writes is enough. So CNT is written last. */
static inline void tim_start_periodic(uint32_t base, uint32_t psc, uint32_t arr)
{
    TIM_CR1(base) = 0;
    TIM_PSC(base) = psc;
    TIM_ARR(base) = arr;
    TIM_EGR(base) = TIM_EGR_UG; /* PSC is buffered: an update event loads it */
    TIM_SR(base) = 0;
    TIM_DIER(base) = TIM_DIER_UIE;
    TIM_CR1(base) = TIM_CR1_CEN;
    TIM_CNT(base) = 0;
}

static inline void nvic_enable_irq(IRQn_Type irq) { NVIC_ISER(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_disable_irq(IRQn_Type irq) { NVIC_ICER(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_set_pending(IRQn_Type irq) { NVIC_ISPR(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_clear_pending(IRQn_Type irq) { NVIC_ICPR(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_set_priority(IRQn_Type irq, uint32_t prio) { NVIC_IPR[irq] = NVIC_PRIO(prio); }
/* Pend an IRQ from software the way a peripheral would (STIR takes the IRQ number). */
static inline void nvic_trigger(IRQn_Type irq) { NVIC_STIR = (uint32_t)irq; }

static inline void __disable_irq(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void __enable_irq(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline uint32_t __get_PRIMASK(void) { uint32_t v; __asm volatile("mrs %0, primask" : "=r"(v)); return v; }
static inline void __set_PRIMASK(uint32_t v) { __asm volatile("msr primask, %0" ::"r"(v) : "memory"); }
static inline uint32_t __get_BASEPRI(void) { uint32_t v; __asm volatile("mrs %0, basepri" : "=r"(v)); return v; }
static inline void __set_BASEPRI(uint32_t v) { __asm volatile("msr basepri, %0" ::"r"(v) : "memory"); }
static inline uint32_t __get_IPSR(void) { uint32_t v; __asm volatile("mrs %0, ipsr" : "=r"(v)); return v; }
static inline void __DSB(void) { __asm volatile("dsb" ::: "memory"); }
static inline void __ISB(void) { __asm volatile("isb" ::: "memory"); }

/* SysTick at `reload` core clocks per tick, exception priority `prio`. */
void systick_start(uint32_t reload, uint32_t prio);
/* A free-running tick counter incremented by SysTick_Handler (samples may provide their own). */
extern volatile uint32_t uwTick;
uint32_t HAL_GetTick(void);

/* Stop here forever once a sample is done; tests put a breakpoint on it. */
void sample_done(void);

#endif
