// Fruit classifier by colour on an Arduino Uno: APDS9960 readings -> emlearn MLP -> serial.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  Serial.begin(9600);
  if (!APDS.begin()) {
    Serial.println("APDS9960 not found");
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
  Serial.print("class: ");
  if (label >= 0 && label < 3) {
    Serial.println(CLASS_NAMES[label]);
  } else {
    Serial.println("unknown");
  }
}
