//! Unit tests of the LightGBM loader.
