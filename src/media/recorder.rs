//! Call recording (placeholder).
