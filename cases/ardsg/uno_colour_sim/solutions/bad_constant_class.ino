// Fruit classifier by colour, assuming a 10-bit sensor: scales by 1023 instead of 255.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  Serial.begin(9600);
  while (!Serial) {
  }
  if (!APDS.begin()) {
    Serial.println("Error initializing APDS9960 sensor.");
    while (true) {
    }
  }
}

void loop() {
  while (!APDS.colorAvailable()) {
    delay(5);
  }
  int r, g, b;
  APDS.readColor(r, g, b);
  // normalise the raw sensor counts to [0, 1]
  float features[3] = {r / 1023.0f, g / 1023.0f, b / 1023.0f};
  int32_t label = fruit_model_predict(features, 3);
  Serial.print("class: ");
  Serial.println(CLASS_NAMES[label]);
}
