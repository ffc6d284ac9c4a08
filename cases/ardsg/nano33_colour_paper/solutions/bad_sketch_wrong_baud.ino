// Fruit classifier by colour on the Arduino Nano 33 BLE Sense (TensorFlow Lite Micro) that
// opens Serial at 115200 baud although the application spec says 9600.
#include <Arduino_APDS9960.h>
#include <Chirale_TensorFlowLite.h>

#include "model.h"
#include "tensorflow/lite/micro/all_ops_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

// Phase 1: globals
const tflite::Model *model = nullptr;
tflite::MicroInterpreter *interpreter = nullptr;
TfLiteTensor *input = nullptr;
TfLiteTensor *output = nullptr;
constexpr int kTensorArenaSize = 8192;
alignas(16) uint8_t tensor_arena[kTensorArenaSize];

// Phase 2: set-up
void setup() {
  Serial.begin(115200);
  while (!Serial) {
  }
  if (!APDS.begin()) {
    Serial.println("Error initializing APDS9960 sensor.");
    while (true) {
    }
  }
  model = tflite::GetModel(fruit_model_tflite);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    Serial.println("Model schema version does not match the library.");
    while (true) {
    }
  }
  static tflite::AllOpsResolver resolver;
  static tflite::MicroInterpreter static_interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  interpreter = &static_interpreter;
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    Serial.println("AllocateTensors() failed.");
    while (true) {
    }
  }
  input = interpreter->input(0);
  output = interpreter->output(0);
}

void loop() {
  // Phase 3: read the sensor and run the model
  while (!APDS.colorAvailable()) {
    delay(5);
  }
  int r, g, b;
  APDS.readColor(r, g, b);
  input->data.f[0] = r / 255.0f;
  input->data.f[1] = g / 255.0f;
  input->data.f[2] = b / 255.0f;
  if (interpreter->Invoke() != kTfLiteOk) {
    Serial.println("Invoke failed.");
    return;
  }
  // Phase 4: report the most probable class
  int best = 0;
  for (int k = 1; k < 3; k++) {
    if (output->data.f[k] > output->data.f[best]) best = k;
  }
  Serial.print("class: ");
  Serial.println(CLASS_NAMES[best]);
}
