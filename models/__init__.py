"""Everything that learns: River online models, batch training and validation, ONNX export (see ARCHITECTURE.md)."""
