"""Reading and writing .tflite flatbuffers: the only code that knows the file format."""
