//! Load generator and chaos runner (being written).
