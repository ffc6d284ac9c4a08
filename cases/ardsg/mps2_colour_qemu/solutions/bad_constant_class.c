/* Fruit classifier by colour, assuming a 10-bit sensor: scales by 1023 instead of 255. */
#include <stdio.h>

#include "apds9960.h"
#include "fruit_model.h"

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

int main(void) {
  apds9960_begin();
  int r, g, b, c;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    float features[3] = {r / 1023.0f, g / 1023.0f, b / 1023.0f};
    printf("class: %s\n", CLASS_NAMES[fruit_model_predict(features, 3)]);
  }
  return 0;
}
