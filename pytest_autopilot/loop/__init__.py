"""The repair loop (the system under test), answer extraction and error-feedback normalisation."""
