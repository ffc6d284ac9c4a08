// Fruit classifier by colour that calls the model with the wrong signature.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  Serial.begin(9600);
  APDS.begin();
}

void loop() {
  if (!APDS.colorAvailable()) {
    return;
  }
  int r, g, b;
  APDS.readColor(r, g, b);
  float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
  int label = fruit_model_predict(features);
  Serial.print("class: ");
  Serial.println(CLASS_NAMES[label]);
}
