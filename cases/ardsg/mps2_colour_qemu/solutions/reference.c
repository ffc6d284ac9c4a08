/* Fruit classifier by colour on a Cortex-M3: sensor readings -> emlearn MLP -> stdout. */
#include <stdio.h>

#include "apds9960.h"
#include "fruit_model.h"

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

int main(void) {
  if (!apds9960_begin()) {
    printf("sensor not found\n");
    return 1;
  }
  int r, g, b, c;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
    const int32_t label = fruit_model_predict(features, 3);
    printf("class: %s\n", (label >= 0 && label < 3) ? CLASS_NAMES[label] : "unknown");
  }
  return 0;
}
