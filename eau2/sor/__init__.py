"""The SoR format: schema inference, the compiled block parser, windows over sources, the writer."""
