/* Fruit classifier by colour that keeps an hour of readings at 300 Hz for later analysis:
 * 3 x 360000 floats (4.3 MB) do not fit the 4 MB of RAM. */
#include <stdio.h>

#include "apds9960.h"
#include "fruit_model.h"

#define HISTORY (300 * 3600)

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};
static float history[HISTORY][3];

int main(void) {
  apds9960_begin();
  int r, g, b, c;
  long n = 0;
  while (apds9960_read_color(&r, &g, &b, &c)) {
    float *features = history[n % HISTORY];
    features[0] = r / 255.0f;
    features[1] = g / 255.0f;
    features[2] = b / 255.0f;
    n++;
    printf("class: %s\n", CLASS_NAMES[fruit_model_predict(features, 3)]);
  }
  return 0;
}
