"""Python-side requirements: the interpreter, the data libraries and the TensorFlow family."""

from __future__ import annotations

from pytest_autopilot.toolchains import module_available, requirement

MC_EXTRA = 'pip install "pytest-autopilot[mc]"  (tensorflow-cpu, ai-edge-litert, tflite-micro, tflite)'

requirement("python", lambda: True, "")
requirement("pandas", module_available("pandas"), "pip install pandas")
requirement("numpy", module_available("numpy"), "pip install numpy")
requirement("tensorflow", module_available("tensorflow"), "pip install tensorflow-cpu  # or: " + MC_EXTRA)
requirement("litert", module_available("ai_edge_litert"), "pip install ai-edge-litert  # or: " + MC_EXTRA)
requirement("tflite_micro", module_available("tflite_micro"), "pip install tflite-micro  # or: " + MC_EXTRA)
requirement("tflite", module_available("tflite"), "pip install tflite  # the flatbuffer parser the MC oracle reads ops with; or: " + MC_EXTRA)
