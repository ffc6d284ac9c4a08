/* Fruit classifier by colour written like an Arduino loop(): it polls the sensor forever and
 * never returns from main, so the run never ends. */
#include <stdio.h>

#include "apds9960.h"
#include "fruit_model.h"

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

int main(void) {
  apds9960_begin();
  for (;;) {
    int r, g, b, c;
    if (apds9960_read_color(&r, &g, &b, &c)) {
      const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
      printf("class: %s\n", CLASS_NAMES[fruit_model_predict(features, 3)]);
    }
  }
}
