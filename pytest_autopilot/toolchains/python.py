"""Python-side requirements: the interpreter, the data libraries and the TensorFlow family."""

from __future__ import annotations

from pytest_autopilot.toolchains import Requirement, module_available

MC_EXTRA = 'pip install "pytest-autopilot[mc]"  (tensorflow-cpu, ai-edge-litert, tflite-micro, tflite)'

PYTHON = Requirement(lambda: True, "")
PANDAS = Requirement(module_available("pandas"), "pip install pandas")
NUMPY = Requirement(module_available("numpy"), "pip install numpy")
TENSORFLOW = Requirement(module_available("tensorflow"), "pip install tensorflow-cpu  # or: " + MC_EXTRA)
LITERT = Requirement(module_available("ai_edge_litert"), "pip install ai-edge-litert  # or: " + MC_EXTRA)
TFLITE_MICRO = Requirement(module_available("tflite_micro"), "pip install tflite-micro  # or: " + MC_EXTRA)
TFLITE = Requirement(module_available("tflite"), "pip install tflite  # the flatbuffer parser the MC oracle reads ops with; or: " + MC_EXTRA)
