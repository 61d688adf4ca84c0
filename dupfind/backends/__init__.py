"""Encoder backends: sentence-transformers on torch, and exported ONNX / OpenVINO models."""
