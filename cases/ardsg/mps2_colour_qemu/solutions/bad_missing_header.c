/* Fruit classifier by colour that includes a TensorFlow Lite Micro header the target does
 * not have. */
#include <stdio.h>

#include "apds9960.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "fruit_model.h"

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

int main(void) {
  apds9960_begin();
  int r, g, b, c;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
    printf("class: %s\n", CLASS_NAMES[fruit_model_predict(features, 3)]);
  }
  return 0;
}
