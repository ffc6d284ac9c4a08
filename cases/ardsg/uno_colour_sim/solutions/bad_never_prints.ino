// Fruit classifier by colour: classifies every reading, but never opens the serial port.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  if (!APDS.begin()) {
    while (true) {
    }
  }
}

void loop() {
  if (!APDS.colorAvailable()) {
    delay(5);
    return;
  }
  int r, g, b, c;
  APDS.readColor(r, g, b, c);
  const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
  const int32_t label = fruit_model_predict(features, 3);
#ifdef DEBUG
  Serial.print("class: ");
  Serial.println(CLASS_NAMES[label]);
#else
  (void)label;
#endif
}
