"""How good the decisions are: evaluation, calibration, labeling and training."""
