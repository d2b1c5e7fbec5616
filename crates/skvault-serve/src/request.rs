//! Request bodies to a typed frame: MLflow's JSON shapes, CSV and Parquet.
