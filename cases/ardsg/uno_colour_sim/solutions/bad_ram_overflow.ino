// Fruit classifier by colour that also reports a moving average of the last 64 readings per
// channel: correct classes, but the float history alone takes 768 bytes of the Uno's 2 KB RAM.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};
const int HISTORY = 64;
float history[3][HISTORY];
int filled = 0;

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
    return;
  }
  int r, g, b, c;
  APDS.readColor(r, g, b, c);
  const float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
  for (int k = 0; k < 3; k++) {
    history[k][filled % HISTORY] = features[k];
  }
  filled++;
  const int n = filled < HISTORY ? filled : HISTORY;
  float mean[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < n; i++) mean[k] += history[k][i];
    mean[k] /= n;
  }
  const int32_t label = fruit_model_predict(features, 3);
  Serial.print("class: ");
  Serial.println(CLASS_NAMES[label]);
  Serial.print("average rgb: ");
  Serial.print(mean[0], 3);
  Serial.print(' ');
  Serial.print(mean[1], 3);
  Serial.print(' ');
  Serial.println(mean[2], 3);
}
