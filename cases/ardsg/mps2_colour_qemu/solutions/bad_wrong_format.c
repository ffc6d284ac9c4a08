/* Fruit classifier by colour that prints a table row per reading instead of "class: <name>". */
#include <stdio.h>

#include "apds9960.h"
#include "fruit_model.h"

static const char *const CLASS_NAMES[] = {"APPLE", "BANANA", "ORANGE"};

int main(void) {
  apds9960_begin();
  printf("r,g,b,fruit\n");
  int r, g, b, c;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
    printf("%d,%d,%d,%s\n", r, g, b, CLASS_NAMES[fruit_model_predict(features, 3)]);
  }
  return 0;
}
