//! Predictions to response bodies: JSON (MLflow's `{"predictions": ...}`), CSV and NPY.
