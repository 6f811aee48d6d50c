"""The bundled offline sample: a small web for the replay server and a Reddit dump."""
