"""Export a trained Int-RA run to a bundle of ONNX graphs (fp32, int8, fp16) for the SDK."""
