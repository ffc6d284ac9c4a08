/* Startup code of the ArdSG Cortex-M3 cases (QEMU mps2-an385), provided by the harness.
 * Vector table, reset handler (copies .data, then newlib's _start: .bss, heap, main, exit)
 * and fault handlers that end the run through semihosting with exit code 134. */
#include <stdint.h>

extern uint32_t __etext, __data_start__, __data_end__, __StackTop;
extern void _start(void);

void Reset_Handler(void);
void Fault_Handler(void);

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16])(void) = {
    (void (*)(void))(&__StackTop), /* initial stack pointer */
    Reset_Handler,                 /* reset */
    Fault_Handler,                 /* NMI */
    Fault_Handler,                 /* HardFault */
    Fault_Handler,                 /* MemManage */
    Fault_Handler,                 /* BusFault */
    Fault_Handler,                 /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler,                 /* SVCall */
    Fault_Handler,                 /* DebugMonitor */
    0,
    Fault_Handler,                 /* PendSV */
    Fault_Handler,                 /* SysTick */
};

void Reset_Handler(void) {
  uint32_t *src = &__etext;
  for (uint32_t *dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  _start();
  for (;;) {
  }
}

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void Fault_Handler(void) {
  static const char message[] = "\n*** fault: the CPU took an exception (HardFault/BusFault/...) ***\n";
  semihost(0x04 /* SYS_WRITE0 */, message);
  /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit with status 134 (QEMU's exit code) */
  static const uint32_t block[2] = {0x20026u, 134u};
  semihost(0x20 /* SYS_EXIT_EXTENDED */, block);
  for (;;) {
  }
}
