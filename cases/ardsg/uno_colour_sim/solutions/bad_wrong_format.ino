// Fruit classifier by colour that reports the prediction in its own format.
#include <Arduino_APDS9960.h>
#include "fruit_model.h"

const char *const CLASS_NAMES[] = {"Apple", "Banana", "Orange"};

void setup() {
  Serial.begin(9600);
  APDS.begin();
  Serial.println("Fruit classifier ready");
}

void loop() {
  if (!APDS.colorAvailable()) {
    return;
  }
  int r, g, b;
  APDS.readColor(r, g, b);
  float features[3] = {r / 255.0f, g / 255.0f, b / 255.0f};
  float probabilities[3];
  eml_net_predict_proba(&fruit_model, features, 3, probabilities, 3);
  int best = 0;
  for (int k = 1; k < 3; k++) {
    if (probabilities[k] > probabilities[best]) best = k;
  }
  Serial.print("Predicted: ");
  Serial.print(CLASS_NAMES[best]);
  Serial.print(" (");
  Serial.print(probabilities[best] * 100.0f, 0);
  Serial.println("%)");
}
