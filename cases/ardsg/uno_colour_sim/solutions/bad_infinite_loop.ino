// Fruit classifier by colour that blinks the LED 300 times at start-up with a byte counter:
// i < 300 is always true for a byte, so setup() never ends and nothing is ever printed.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  pinMode(LED_BUILTIN, OUTPUT);
  for (byte i = 0; i < 300; i++) {
    digitalWrite(LED_BUILTIN, i % 2);
    delay(1);
  }
  Serial.begin(9600);
  APDS.begin();
}

void loop() {
  if (!APDS.colorAvailable()) {
    return;
  }
  int r, g, b, c;
  APDS.readColor(r, g, b, c);
  const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
  Serial.print("class: ");
  Serial.println(CLASS_NAMES[fruit_model_predict(features, 3)]);
}
