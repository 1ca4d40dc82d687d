//! Istio resource model (being written).
