/* Fruit classifier by colour that writes its lines to the board's UART0 itself, but never
 * enables the transmitter: every byte is dropped. */
#include <stdint.h>

#include "apds9960.h"
#include "fruit_model.h"

#define UART0_DATA (*(volatile uint32_t *)0x40004000u)

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

static void uart_puts(const char *s) {
  while (*s) {
    UART0_DATA = (uint32_t)*s++;
  }
}

int main(void) {
  apds9960_begin();
  int r, g, b, c;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
    uart_puts("class: ");
    uart_puts(CLASS_NAMES[fruit_model_predict(features, 3)]);
    uart_puts("\n");
  }
  return 0;
}
