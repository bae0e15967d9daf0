"""Datasets: the HDF5 schema, simulation and tf.data input pipelines."""
